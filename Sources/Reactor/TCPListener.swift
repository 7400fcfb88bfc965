#if canImport(Glibc)
import Glibc
#endif
import CReactor
import Logging

/// A listening socket on the reactor. Accepts until EAGAIN; when the process runs out of descriptors it stops
/// accepting for a moment instead of spinning on an accept that keeps failing.
public final class TCPListener: IOHandler {
    public unowned let reactor: Reactor
    public let fd: Int32
    /// The bound address, with the real port when 0 was asked for.
    public let localAddress: SocketAddress
    public var port: UInt16 { localAddress.port }

    private let onAccept: (Int32) -> Void
    private var paused = false
    private var exhaustedRetry: TimerHandle?
    private var exhaustionLog = LogThrottle()
    private var closed = false
    private let logger: Logger

    /// accept(2), replaceable so tests can make it fail with EMFILE without starving the whole test process.
    var acceptCall: (Int32) -> Int32 = TCPListener.systemAccept

    static func systemAccept(_ fd: Int32) -> Int32 {
        creactor_accept4(fd, CREACTOR_SOCK_NONBLOCK | CREACTOR_SOCK_CLOEXEC)
    }

    /// Times the listener hit EMFILE/ENFILE/ENOBUFS/ENOMEM.
    public private(set) var exhaustionCount = 0
    /// How long to stop accepting after running out of descriptors.
    public var exhaustionBackoff = 0.1

    /// `onAccept` receives each accepted non-blocking socket and owns it from then on.
    public init(reactor: Reactor, address: SocketAddress, backlog: Int32 = 1024, reusePort: Bool = false,
                logger: Logger = Logger(label: "reactor.listener"),
                onAccept: @escaping (Int32) -> Void) throws(ReactorError) {
        let fd: Int32
        do {
            fd = try Socket.listen(on: address, backlog: backlog, nonBlocking: true, reusePort: reusePort)
        } catch {
            throw .system(error)
        }
        self.reactor = reactor
        self.fd = fd
        self.localAddress = SocketAddress.local(of: fd) ?? address
        self.onAccept = onAccept
        self.logger = logger
        do {
            try reactor.register(fd: fd, interest: .read, handler: self)
        } catch {
            Glibc.close(fd)
            throw error
        }
    }

    /// Stops taking connections (they wait in the backlog) until `resumeAccepting`.
    public func pauseAccepting() {
        guard !paused, !closed else { return }
        paused = true
        try? reactor.setInterest(fd: fd, .none)
    }

    public func resumeAccepting() {
        guard paused, !closed, exhaustedRetry == nil else { return }
        paused = false
        try? reactor.setInterest(fd: fd, .read)
    }

    public var isAccepting: Bool { !paused && !closed }

    public func close() {
        guard !closed else { return }
        closed = true
        exhaustedRetry?.cancel()
        reactor.unregister(fd: fd)
        Glibc.close(fd)
    }

    public func readable() {
        // A bounded batch, as Twisted's `numberAccepts` does: a storm of thousands of connects would otherwise be
        // accepted in one go while due timers wait. The level-triggered listener comes back next iteration.
        var accepted = 0
        while !paused && !closed && accepted < Self.acceptsPerWakeup {
            do {
                guard case .processed(let client) = try SystemCall.nonBlocking("accept4", { acceptCall(fd) }) else { return }
                accepted += 1
                onAccept(client)
            } catch {
                switch error.errno {
                case ECONNABORTED, EPROTO:
                    continue  // that client gave up before we took it; the next may be there
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    descriptorsExhausted(error.errno)
                    return
                default:
                    logger.error("accept failed: \(error)")
                    return
                }
            }
        }
    }

    /// Connections accepted per readable event at most.
    public static let acceptsPerWakeup = 64

    private func descriptorsExhausted(_ code: Int32) {
        exhaustionCount += 1
        if exhaustionLog.admit(now: MonotonicClock.now()) != nil {
            logger.warning("accept: \(SystemError("accept", errno: code).reason); pausing accepts for \(exhaustionBackoff)s")
        }
        // Only reached while accepting (the accept loop stops once paused), so the retry resumes.
        pauseAccepting()
        exhaustedRetry = reactor.callLater(exhaustionBackoff) { [weak self] in
            guard let self else { return }
            self.exhaustedRetry = nil
            self.resumeAccepting()
        }
    }

    public func writable() {}
    public func hangup() {}

    public func reactorClosing() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }
}
