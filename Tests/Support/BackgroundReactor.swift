#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Reactor
import Synchronization

/// A reactor running on a thread of its own, for tests whose client side (libcurl, raw sockets, blocking calls)
/// blocks the test thread: the one harness every test target uses for that. Objects are built and used on the
/// reactor's thread through `sync`; the test thread never touches them directly.
///
/// @unchecked Sendable: the reactor is reached from the test thread only through `execute` and `stop`, the two
/// calls it makes safe from any thread, and `finished` is an atomic.
public final class BackgroundReactor: @unchecked Sendable {
    public let reactor: Reactor
    private let finished = Atomic<Bool>(false)

    /// A new reactor, run with `run()`.
    public convenience init(backend: BackendKind = .epoll, name: String = "test-reactor") throws {
        let reactor = try Reactor(backend: backend)
        self.init(reactor: reactor, name: name) { try reactor.run() }
    }

    /// An existing reactor, run by `body` (e.g. a gateway's own `run`, which also stops its servers at the end).
    public init(reactor: Reactor, name: String = "test-reactor", body: @escaping @Sendable () throws -> Void) {
        self.reactor = reactor
        WorkerThread.start(name: name) { [self] in
            try? body()
            finished.store(true, ordering: .releasing)
        }
    }

    /// Runs `work` on the reactor thread and waits for its result.
    public func sync<T: Sendable>(_ work: @escaping @Sendable () throws -> T) throws -> T {
        let result = Locked<Result<T, any Error>?>(nil)
        let ready = DispatchSemaphore(value: 0)
        reactor.execute {
            result.withLock { $0 = Result { try work() } }
            ready.signal()
        }
        ready.wait()
        return try result.withLock { $0! }.get()
    }

    public var isStopped: Bool { finished.load(ordering: .acquiring) }

    /// Waits for the loop to end (by `stop` or by itself), at most `limit` seconds.
    public func waitUntilStopped(limit: Double = 5) {
        let end = MonotonicClock.now() + MonotonicClock.nanoseconds(fromSeconds: limit)
        while !isStopped && MonotonicClock.now() < end { usleep(1000) }
    }

    public func stop() {
        reactor.stop()
        waitUntilStopped(limit: 20)
    }
}

/// A reactor-confined value carried through `@Sendable` closures that only use it back on the reactor thread.
public struct Confined<T>: @unchecked Sendable {
    public let value: T

    public init(value: T) {
        self.value = value
    }
}
