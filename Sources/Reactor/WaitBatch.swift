/// How long the loop's wait may gather events before it wakes: until `completions` have come in; once
/// `maxDelayMicroseconds` have passed since the wait began, at the first event there is (or comes); and never past
/// the loop's next timer. A fan-out's thousands of sockets, each delivering a little, then cost one wake-up a batch
/// instead of one an event, for at most that delay on each; so does a call posted from another thread (`execute`,
/// `stop`) or a signal, whose wake-up is an event like the others. Only io_uring can wait for a number of
/// completions (Linux 6.12, `min_wait_usec`); epoll, poll and select, and io_uring on older kernels, wake at the
/// first event (`Reactor.batchesWaits` says which).
public struct WaitBatch: Sendable, Equatable {
    public let completions: Int
    public let maxDelayMicroseconds: Int

    public init(completions: Int, maxDelayMicroseconds: Int) {
        precondition(completions >= 1 && maxDelayMicroseconds >= 0, "a wait batch needs one completion or more and no negative delay")
        self.completions = completions
        self.maxDelayMicroseconds = maxDelayMicroseconds
    }

    /// 64 completions or 1 ms: a client reading thousands of slow sockets (`poetry get --async`), where a read
    /// printed a millisecond late changes nothing. Not for a server, whose every response would wait for it.
    public static let fanOut = WaitBatch(completions: 64, maxDelayMicroseconds: 1000)
}
