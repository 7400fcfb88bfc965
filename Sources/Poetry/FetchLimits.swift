/// How much one fetch task may take, whatever its target does: bytes (a target that sends without end must not
/// fill the fetcher's memory) and time in all (a target that trickles a byte just inside the stall timeout must
/// not hold a task for ever). A task past either fails alone, with a message naming the limit.
public struct FetchLimits: Sendable, Equatable {
    /// Most bytes one task receives; nil: no cap.
    public var maxPoemBytes: Int?
    /// Seconds one task may take from its connect to the poem's end; nil: no deadline.
    public var deadline: Double?

    public init(maxPoemBytes: Int? = nil, deadline: Double? = nil) {
        self.maxPoemBytes = maxPoemBytes
        self.deadline = deadline
    }

    /// 1 MiB: ample for any poem (the seed's longest is 3,003 bytes).
    public static let defaultMaxPoemBytes = 1 << 20

    /// Whether `received` more bytes, on top of `total` so far, go past the cap.
    @inline(__always)
    func exceeded(total: Int, adding received: Int) -> Bool {
        guard let maxPoemBytes else { return false }
        return total + received > maxPoemBytes
    }

    var tooLongMessage: String { "Poem too long: more than \(maxPoemBytes ?? 0) bytes (--max-poem-bytes)" }
    var deadlineMessage: String { "Timed out: poem not complete within \(formatSeconds(deadline ?? 0)) (--fetch-deadline)" }
}
