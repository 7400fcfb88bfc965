import Synchronization
import Reactor

/// Lets another thread stop a threaded fetch: cancels every task's blocking read at once.
public final class ThreadedFetchControl: Sendable {
    private let cancelled = Atomic<Bool>(false)
    /// `Locked` (pthread), not the standard library's `Mutex`: ThreadSanitizer sees its ordering.
    private let controls = Locked<[BlockingFetchControl]>([])

    public init() {}

    public var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    public func cancel() {
        cancelled.store(true, ordering: .releasing)
        for control in controls.withLock({ $0 }) { control.cancel() }
    }

    /// One control per task; already cancelled if `cancel()` came first.
    func prepare(count: Int) -> [BlockingFetchControl] {
        let made = (0..<count).map { _ in BlockingFetchControl() }
        controls.withLock { $0 = made }
        if isCancelled { for control in made { control.cancel() } }
        return made
    }
}
