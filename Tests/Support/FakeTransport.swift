/// A transport with no socket: what a connection wrote, what the "kernel" took, what stayed queued, whether it
/// reads, and how it ended. `room` is how many bytes the peer's side will still take before output queues (a
/// client that never reads has none).
public struct FakeTransport {
    public enum Ending: Equatable { case open, closedAfterFlush, reset, writeShutDown }

    public var room: Int
    /// Bytes the peer has taken.
    public private(set) var delivered: [UInt8] = []
    /// Bytes written but not taken.
    public private(set) var queued: [UInt8] = []
    public var readingPaused = false
    /// What the "kernel" still holds unsent, as a connection would measure it (SIOCOUTQ).
    public var kernelUnsent = 0
    public var ending = Ending.open

    public init(room: Int = Int.max) {
        self.room = room
    }

    /// A write: what fits in `room` goes out, the rest queues.
    public mutating func write(_ bytes: [UInt8]) {
        guard ending == .open || ending == .writeShutDown else { return }
        if queued.isEmpty {
            let taken = min(room, bytes.count)
            delivered += bytes[..<taken]
            room -= taken
            queued += bytes[taken...]
        } else {
            queued += bytes
        }
    }

    /// The peer reads `count` bytes: that much room opens and queued bytes move out. Returns how many moved.
    @discardableResult
    public mutating func peerReads(_ count: Int) -> Int {
        room = room > Int.max - count ? Int.max : room + count
        let moved = min(room, queued.count)
        delivered += queued[..<moved]
        queued.removeFirst(moved)
        room -= moved
        return moved
    }

    public var deliveredText: String { String(decoding: delivered, as: UTF8.self) }
}
