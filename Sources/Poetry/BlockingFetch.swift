#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Synchronization

/// Lets another thread stop a blocking fetch. `cancel()` never touches the fetch's socket: it sets a flag and
/// writes to a stop pipe the fetch thread's every wait also watches, and that thread, the socket's only owner,
/// closes it. (Shutting the socket down from here would race its close: the number may already be somebody else's.)
public final class BlockingFetchControl: Sendable {
    private let cancelled = Atomic<Bool>(false)
    /// Owned by the control; -1 when no pipe could be made, in which case waits wake every 100 ms to look.
    private let stopPipe: (read: Int32, write: Int32)

    public init() {
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)
        } else {
            fds = [-1, -1]
        }
        stopPipe = (fds[0], fds[1])
    }

    deinit {
        if stopPipe.read >= 0 {
            close(stopPipe.read)
            close(stopPipe.write)
        }
    }

    public var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// Safe from any thread, any number of times.
    public func cancel() {
        cancelled.store(true, ordering: .releasing)
        guard stopPipe.write >= 0 else { return }
        // One byte stays unread for good: every later wait sees it. A full pipe (EAGAIN) already says stop.
        var byte: UInt8 = 1
        _ = write(stopPipe.write, &byte, 1)
    }

    enum Wait { case ready, timedOut, cancelled }

    /// Waits until `fd` has `events`, the deadline (monotonic nanoseconds) passes, or the fetch is cancelled.
    func wait(for fd: Int32, events: Int16, deadline: UInt64?) -> Wait {
        while true {
            if isCancelled { return .cancelled }
            var milliseconds: Int32 = -1
            if let deadline {
                let now = MonotonicClock.now()
                guard deadline > now else { return .timedOut }
                milliseconds = Int32(min((deadline - now + 999_999) / 1_000_000, UInt64(Int32.max)))
            }
            if stopPipe.read < 0 { milliseconds = milliseconds < 0 ? 100 : min(milliseconds, 100) }
            var fds = [pollfd(fd: fd, events: events, revents: 0), pollfd(fd: stopPipe.read, events: Int16(POLLIN), revents: 0)]
            let result = poll(&fds, stopPipe.read >= 0 ? 2 : 1, milliseconds)
            if result < 0 && errno != EINTR { return .ready }  // the call that follows reports the error
            if isCancelled { return .cancelled }
            if result > 0 && fds[0].revents != 0 { return .ready }
        }
    }
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

    /// One task on the calling thread (shared with `ThreadedFetch`): reports `connected`, each read, and the time
    /// spent blocked in `connect` and in each `recv`; the caller reports how it ended.
    static func fetchOne(_ task: FetchTask, timeout: Double?, limits: FetchLimits, control: BlockingFetchControl,
                                 elapsed: () -> Double, observer: (FetchEvent) -> Void) -> Result<[UInt8], Reason> {
        let taskDeadline = limits.deadline.map { MonotonicClock.now() &+ MonotonicClock.nanoseconds(fromSeconds: $0) }
        /// The next wait's end: the stall timeout from now, or the whole task's deadline if that comes first.
        func waitDeadline() -> (at: UInt64?, isTaskDeadline: Bool) {
            let stall = timeout.map { MonotonicClock.now() &+ MonotonicClock.nanoseconds(fromSeconds: $0) }
            guard let taskDeadline else { return (stall, false) }
            guard let stall, stall <= taskDeadline else { return (taskDeadline, true) }
            return (stall, false)
        }
        let cancelled = Reason(text: "Cancelled")
        let connectStart = elapsed()
        // Non-blocking underneath, so every wait is a poll that also watches the control's wake-up; the program
        // still reads one poem after another, each wait blocking it. The task's address first, then its fallback
        // if that one refused (localhost: 127.0.0.1, then ::1). This thread owns each socket and closes it.
        var fd: Int32 = -1
        var addresses = [task.address] + (task.fallback.map { [$0] } ?? [])
        connecting: while true {
            let address = addresses.removeFirst()
            do {
                fd = try Socket.makeStream(for: address, nonBlocking: true)
            } catch {
                return .failure(Reason(text: error.reason))
            }
            var code: Int32 = 0
            if address.withSockAddr({ connect(fd, $0, $1) }) != 0 {
                code = errno
                if code == EINPROGRESS || code == EINTR {
                    let limit = waitDeadline()
                    switch control.wait(for: fd, events: Int16(POLLOUT), deadline: limit.at) {
                    case .cancelled:
                        close(fd)
                        return .failure(cancelled)
                    case .timedOut:
                        close(fd)
                        return .failure(Reason(text: limit.isTaskDeadline ? limits.deadlineMessage : "Connection timed out"))
                    case .ready:
                        code = Socket.pendingError(fd)
                    }
                }
            }
            if code == 0 { break connecting }
            close(fd)
            guard code == ECONNREFUSED, !addresses.isEmpty, !control.isCancelled else {
                observer(.blocked(task: task.number, call: .connect, t: connectStart, seconds: elapsed() - connectStart))
                return .failure(Reason(text: ConnectErrorText.text(code)))
            }
        }
        defer { close(fd) }
        observer(.blocked(task: task.number, call: .connect, t: connectStart, seconds: elapsed() - connectStart))
        observer(.connected(task: task.number, t: elapsed()))
        var poem: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            // Blocked in recv, as the seed's client is: the wait for data and the read that takes it.
            let recvStart = elapsed()
            let limit = waitDeadline()
            switch control.wait(for: fd, events: Int16(POLLIN), deadline: limit.at) {
            case .cancelled: return .failure(cancelled)
            case .timedOut:
                return .failure(Reason(text: limit.isTaskDeadline ? limits.deadlineMessage
                                                                  : "Timed out: no data for \(formatSeconds(timeout ?? 0))"))
            case .ready: break
            }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            observer(.blocked(task: task.number, call: .recv, t: recvStart, seconds: elapsed() - recvStart))
            if count > 0 {
                guard !limits.exceeded(total: poem.count, adding: count) else { return .failure(Reason(text: limits.tooLongMessage)) }
                poem.append(contentsOf: buffer[0..<count])
                observer(.received(task: task.number, bytes: count, received: poem.count, t: elapsed()))
            } else if count == 0 {
                return .success(poem)
            } else {
                let code = errno
                if code == EINTR || code == EAGAIN || code == EWOULDBLOCK { continue }
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
