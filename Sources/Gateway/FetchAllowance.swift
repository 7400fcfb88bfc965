import Synchronization

/// The limits every reactor thread's fetches share: streams (`--max-streams`), fetch threads
/// (`--max-blocking-fetches`) and sockets (the fetch socket budget). Atomics, not a lock: reserving is a few
/// compare-and-swaps once per fetch, and no thread ever waits on another to start one.
final class FetchAllowance: Sendable {
    let maxStreams: Int
    let maxThreads: Int
    let maxSockets: Int
    private let streams = Atomic<Int>(0)
    private let threads = Atomic<Int>(0)
    private let sockets = Atomic<Int>(0)

    init(maxStreams: Int, maxThreads: Int, maxSockets: Int) {
        self.maxStreams = maxStreams
        self.maxThreads = maxThreads
        self.maxSockets = maxSockets
    }

    /// Takes one stream, `threads` threads and `sockets` sockets, or nothing and the refusal. Taken one counter
    /// at a time and handed back on a refusal, so two threads racing for the last stream may both be refused
    /// (never both admitted): a 429 the client retries, never a limit overrun.
    func reserve(threads threadCount: Int, sockets socketCount: Int) -> GatewayError? {
        guard Self.take(1, from: streams, limit: maxStreams) else { return .tooManyStreams(maxStreams) }
        guard Self.take(threadCount, from: threads, limit: maxThreads) else {
            streams.subtract(1, ordering: .relaxed)
            return .tooManyBlockingFetches(maxThreads)
        }
        guard Self.take(socketCount, from: sockets, limit: maxSockets) else {
            streams.subtract(1, ordering: .relaxed)
            threads.subtract(threadCount, ordering: .relaxed)
            return .tooManyFetchSockets(maxSockets)
        }
        return nil
    }

    /// Hands back what a fetch reserved, once it has ended.
    func release(threads threadCount: Int, sockets socketCount: Int) {
        streams.subtract(1, ordering: .relaxed)
        threads.subtract(threadCount, ordering: .relaxed)
        sockets.subtract(socketCount, ordering: .relaxed)
    }

    /// Streams open now, all threads together.
    var openStreams: Int { streams.load(ordering: .relaxed) }

    private static func take(_ count: Int, from counter: borrowing Atomic<Int>, limit: Int) -> Bool {
        guard count > 0 else { return true }
        var current = counter.load(ordering: .relaxed)
        while current + count <= limit {
            let (exchanged, original) = counter.compareExchange(expected: current, desired: current + count, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }
}
