import Synchronization

/// How many bytes of poem text the fetches of one process may hold at once. Each task's text is capped on its own
/// (`--max-poem-bytes`), but a fetch has up to a thousand tasks and a gateway many fetches: this is the bound on
/// all of them together. A task that cannot reserve more stops keeping its text (its bytes are still counted and
/// its `finished` event still comes, with no text). Safe from any thread: blocking and threaded fetches run on
/// threads of their own.
public final class PoemTextBudget: Sendable {
    private let available: Atomic<Int>
    public let capacity: Int

    public init(bytes: Int) {
        capacity = bytes
        available = Atomic(bytes)
    }

    /// Takes `count` bytes from the budget, if it has them.
    public func reserve(_ count: Int) -> Bool {
        var current = available.load(ordering: .relaxed)
        while current >= count {
            let (exchanged, original) = available.compareExchange(expected: current, desired: current - count, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    public func release(_ count: Int) {
        guard count > 0 else { return }
        available.add(count, ordering: .relaxed)
    }

    /// Bytes not reserved now.
    public var remaining: Int { available.load(ordering: .relaxed) }
}
