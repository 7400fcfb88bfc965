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
    /// Where the listener is; every change goes through `moveState`.
    private enum State {
        case accepting
        /// Paused by its owner (`pauseAccepting`), e.g. at a connection cap.
        case paused
        /// Out of descriptors: not accepting until `retry` fires; `pausedMeanwhile` remembers an owner's pause made
        /// during the back-off, so the retry does not undo it.
        case backingOff(retry: TimerHandle, pausedMeanwhile: Bool)
        case closed
    }

    private enum Event {
        case pause, resume, exhausted(retry: TimerHandle), retryDue, close
    }

    private var state = State.accepting
    private var exhaustionLog = LogThrottle()
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
        reactor.assertInLoop()
        moveState(.pause)
    }

    public func resumeAccepting() {
        reactor.assertInLoop()
        moveState(.resume)
    }

    public var isAccepting: Bool {
        if case .accepting = state { return true }
        return false
    }

    public func close() {
        reactor.assertInLoop()
        moveState(.close)
    }

    /// The whole lifecycle in one table (after SwiftNIO's `SocketChannelLifecycleManager`); the watched interest
    /// follows the state. Pausing or resuming twice is harmless; anything after close is ignored.
    private func moveState(_ event: Event) {
        switch (state, event) {
        case (.accepting, .pause):
            state = .paused
            try? reactor.setInterest(fd: fd, .none)
        case (.paused, .resume):
            state = .accepting
            try? reactor.setInterest(fd: fd, .read)
        case (.accepting, .exhausted(let retry)):
            state = .backingOff(retry: retry, pausedMeanwhile: false)
            try? reactor.setInterest(fd: fd, .none)
        case (.backingOff(let retry, _), .pause):
            state = .backingOff(retry: retry, pausedMeanwhile: true)
        case (.backingOff(let retry, _), .resume):
            state = .backingOff(retry: retry, pausedMeanwhile: false)
        case (.backingOff(_, let pausedMeanwhile), .retryDue):
            state = pausedMeanwhile ? .paused : .accepting
            if !pausedMeanwhile { try? reactor.setInterest(fd: fd, .read) }
        case (.backingOff(let retry, _), .close):
            retry.cancel()
            closeSocket()
        case (.accepting, .close), (.paused, .close):
            closeSocket()
        case (.accepting, .resume), (.paused, .pause), (.closed, _):
            break
        case (.accepting, .retryDue), (.paused, .retryDue), (.paused, .exhausted), (.backingOff, .exhausted):
            assertionFailure("TCPListener: illegal move \(event) while \(state)")
        }
    }

    private func closeSocket() {
        state = .closed
        reactor.unregister(fd: fd, closing: true)
        Glibc.close(fd)
    }

    public func readable() {
        // A bounded batch, as Twisted's `numberAccepts` does: a storm of thousands of connects would otherwise be
        // accepted in one go while due timers wait. The level-triggered listener comes back next iteration.
        var accepted = 0
        while isAccepting && accepted < Self.acceptsPerWakeup {
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
        let retry = reactor.callLater(exhaustionBackoff) { [weak self] in self?.moveState(.retryDue) }
        moveState(.exhausted(retry: retry))
    }

    public func writable() {}
    public func hangup() {}

    public func reactorClosing() {
        if case .closed = state { return }
        state = .closed
        Glibc.close(fd)
    }
}
