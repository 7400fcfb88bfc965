#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Synchronization

/// Lets another thread stop a blocking fetch: sets a flag and shuts down the socket being read, which wakes the
/// blocked recv at once.
public final class BlockingFetchControl: Sendable {
    private let cancelled = Atomic<Bool>(false)
    private let currentSocket = Atomic<Int32>(-1)

    public init() {}

    public var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    public func cancel() {
        cancelled.store(true, ordering: .releasing)
        let fd = currentSocket.load(ordering: .acquiring)
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    func using(_ fd: Int32) { currentSocket.store(fd, ordering: .releasing) }
    func done() { currentSocket.store(-1, ordering: .releasing) }
}

/// The seed's blocking client: one server after another, each read blocking the whole program. Runs on the
/// calling thread and reports to `observer` on that thread.
public enum BlockingFetch {
    public static func run(tasks: [FetchTask], timeout: Double? = nil, limits: FetchLimits = FetchLimits(),
                           control: BlockingFetchControl = BlockingFetchControl(), observer: (FetchEvent) -> Void) {
        let start = MonotonicClock.now()
        func elapsed() -> Double { MonotonicClock.seconds(fromNanoseconds: MonotonicClock.now() &- start) }
        observer(.started(mode: .blocking, tasks: tasks))
        var poems = 0
        var failures = 0
        for task in tasks {
            guard !control.isCancelled else { return }
            observer(.connecting(task: task.number, t: elapsed()))
            let outcome = fetchOne(task, timeout: timeout, limits: limits, control: control, elapsed: elapsed, observer: observer)
            guard !control.isCancelled else { return }
            switch outcome {
            case .success(let poem):
                poems += 1
                observer(.finished(task: task.number, bytes: poem.count, poem: poem, t: elapsed()))
            case .failure(let reason):
                failures += 1
                observer(.failed(task: task.number, reason: reason.text, t: elapsed()))
            }
        }
        observer(.summary(poems: poems, failed: failures, elapsed: elapsed()))
    }

    struct Reason: Error { let text: String }

    private static func fetchOne(_ task: FetchTask, timeout: Double?, limits: FetchLimits, control: BlockingFetchControl,
                                 elapsed: () -> Double, observer: (FetchEvent) -> Void) -> Result<[UInt8], Reason> {
        let deadline = limits.deadline.map { MonotonicClock.now() &+ MonotonicClock.nanoseconds(fromSeconds: $0) }
        var fd: Int32 = -1
        // The task's address, then its fallback if that one refused (localhost: 127.0.0.1, then ::1).
        var addresses = [task.address] + (task.fallback.map { [$0] } ?? [])
        while true {
            let address = addresses.removeFirst()
            do {
                fd = try Socket.makeStream(for: address, nonBlocking: false)
            } catch {
                return .failure(Reason(text: error.reason))
            }
            control.using(fd)
            if let timeout { Socket.setTimeouts(fd, seconds: timeout) }
            if address.withSockAddr({ connect(fd, $0, $1) }) == 0 { break }
            let code = errno
            control.done()
            close(fd)
            guard code == ECONNREFUSED, !addresses.isEmpty, !control.isCancelled else {
                return .failure(Reason(text: code == EINPROGRESS || code == EAGAIN ? "Connection timed out" : ConnectErrorText.text(code)))
            }
        }
        defer {
            control.done()
            close(fd)
        }
        // The socket timeout in force: the stall timeout, or less once the deadline is nearer than that.
        var waitLimit = timeout
        var deadlineIsNearer = false
        observer(.connected(task: task.number, t: elapsed()))
        var poem: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let deadline {
                // Only in the last stall-timeout's worth of the deadline does the socket timeout change (a syscall per read).
                let now = MonotonicClock.now()
                guard now < deadline else { return .failure(Reason(text: limits.deadlineMessage)) }
                // At least a millisecond: a zero timeval would mean no timeout at all.
                let remaining = max(MonotonicClock.seconds(fromNanoseconds: deadline - now), 0.001)
                if waitLimit.map({ remaining < $0 }) ?? true {
                    Socket.setTimeouts(fd, seconds: remaining)
                    waitLimit = remaining
                    deadlineIsNearer = true
                }
            }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                guard !limits.exceeded(total: poem.count, adding: count) else { return .failure(Reason(text: limits.tooLongMessage)) }
                poem.append(contentsOf: buffer[0..<count])
                observer(.received(task: task.number, bytes: count, received: poem.count, t: elapsed()))
            } else if count == 0 {
                return .success(poem)
            } else {
                let code = errno
                if code == EINTR { continue }
                if code == EAGAIN || code == EWOULDBLOCK {
                    if deadlineIsNearer { return .failure(Reason(text: limits.deadlineMessage)) }
                    return .failure(Reason(text: "Timed out: no data for \(formatSeconds(timeout ?? 0))"))
                }
                if code == ECONNRESET && !poem.isEmpty { return .failure(Reason(text: ConnectErrorText.cutShort(after: poem.count))) }
                return .failure(Reason(text: ConnectErrorText.text(code)))
            }
        }
    }
}

enum ConnectErrorText {
    static func text(_ code: Int32) -> String {
        switch code {
        case ECONNRESET: return "Connection reset by peer"
        default: return SystemError("", errno: code).reason
        }
    }

    /// A reset after part of the poem: a server stopped mid-poem resets rather than closes, so the part is never
    /// taken for the whole.
    static func cutShort(after bytes: Int) -> String {
        "Connection reset by peer after \(bytes) bytes: the server stopped mid-poem"
    }
}
