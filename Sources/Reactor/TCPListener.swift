#if canImport(Glibc)
import Glibc
#endif
import CReactor
import Logging

/// A listening socket on the reactor. Accepts until EAGAIN; when the process runs out of descriptors it stops
/// accepting for a moment instead of spinning on an accept that keeps failing. On a backend with completion reads
/// (io_uring) the kernel accepts by itself (one multishot accept) and each completion carries a new descriptor;
/// what it accepted while the listener was paused or backing off is held and handed over when accepting resumes.
public final class TCPListener: IOHandler, CompletionReceiver {
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
    /// The reactor's completion reads, when its backend has them: accepts then arrive as completions.
    private let completionReads: (any CompletionReads)?
    /// Descriptors the kernel accepted while this listener was not taking them, oldest first.
    private var heldAccepts: [Int32] = []
    /// Connections the kernel accepted by completion and not handed over yet.
    var heldAcceptCount: Int { heldAccepts.count }
    /// Hands over held accepts on a later turn: the rest of a batch, or what waited while paused.
    private lazy var heldDelivery = NextTurnCall(reactor: reactor) { [weak self] in self?.deliverHeldAccepts() }
    /// Accepts handed over in the loop iteration `acceptTurn`, bounded as a readiness wake-up's batch is.
    private var acceptTurn: UInt64 = .max
    private var acceptsThisTurn = 0
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
        completionReads = reactor.completionReads
        do {
            try reactor.register(fd: fd, interest: completionReads == nil ? .read : [], handler: self)
            if let completionReads {
                completionReads.attachReceiver(fd: fd, self, accepting: true)
                try completionReads.receive(fd: fd)
            }
        } catch {
            reactor.unregister(fd: fd)
            Glibc.close(fd)
            throw error
        }
    }

    /// Starts taking connections: readiness, or the multishot accept and what it held meanwhile.
    private func startWatching() {
        guard let completionReads else {
            try? reactor.setInterest(fd: fd, .read)
            return
        }
        if !heldAccepts.isEmpty { heldDelivery.request() }
        // A batch already waits: the rest stay in the backlog (counted by the kernel, bounded by it) until it is
        // handed over, rather than in descriptors nobody counts.
        guard heldAccepts.count < Self.acceptsPerWakeup else { return }
        do throws(ReactorError) {
            try completionReads.receive(fd: fd)
        } catch {
            logger.error("accept: \(error)")
        }
    }

    private func stopWatching() {
        guard let completionReads else {
            try? reactor.setInterest(fd: fd, .none)
            return
        }
        completionReads.stopReceiving(fd: fd)
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
            stopWatching()
        case (.paused, .resume):
            state = .accepting
            startWatching()
        case (.accepting, .exhausted(let retry)):
            state = .backingOff(retry: retry, pausedMeanwhile: false)
            stopWatching()
        case (.backingOff(let retry, _), .pause):
            state = .backingOff(retry: retry, pausedMeanwhile: true)
        case (.backingOff(let retry, _), .resume):
            state = .backingOff(retry: retry, pausedMeanwhile: false)
        case (.backingOff(_, let pausedMeanwhile), .retryDue):
            state = pausedMeanwhile ? .paused : .accepting
            if !pausedMeanwhile { startWatching() }
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
        closeHeldAccepts()
    }

    private func closeHeldAccepts() {
        for client in heldAccepts { Glibc.close(client) }
        heldAccepts.removeAll()
    }

    // MARK: completion accepts

    func receiveCompleted(_ result: Int32, _ bytes: UnsafeRawBufferPointer, more: Bool) {
        if result >= 0 {
            if case .closed = state {
                Glibc.close(result)
                return
            }
            heldAccepts.append(result)
            deliverHeldAccepts()
            // A multishot accept takes everything the backlog has in one go: past a batch held, it stops until
            // the batch is handed over (`deliverHeldAccepts` starts it again).
            if heldAccepts.count >= Self.acceptsPerWakeup { completionReads?.stopReceiving(fd: fd) }
        } else {
            switch -result {
            case ECONNABORTED, EPROTO, ECANCELED:
                break  // a client that gave up before we took it, or our own stop
            default:
                // Exhaustion, or an error that may well persist: backed off, not restarted every turn.
                if isAccepting { backOff(afterAcceptFailure: -result) }
            }
        }
        // The multishot accept has ended (an error, or our stop): take the next connections while accepting.
        if !more && isAccepting { startWatching() }
    }

    func sendCompleted(_ result: Int32) {}

    /// Hands over held descriptors in order while accepting, at most a readiness wake-up's batch per loop
    /// iteration; the rest wait for the next one, so a connect storm cannot hold up the timers.
    private func deliverHeldAccepts() {
        let turn = reactor.stats.iterations
        if turn != acceptTurn {
            acceptTurn = turn
            acceptsThisTurn = 0
        }
        // Each leaves the list before it is handed over: the owner may pause or close the listener meanwhile.
        while isAccepting && !heldAccepts.isEmpty && acceptsThisTurn < Self.acceptsPerWakeup {
            let client = heldAccepts.removeFirst()
            acceptsThisTurn += 1
            onAccept(client)
        }
        if isAccepting && !heldAccepts.isEmpty { heldDelivery.request() }
        // Room again: the accept starts if it had stopped for the batch (a no-op while it runs).
        if isAccepting && completionReads != nil && heldAccepts.count < Self.acceptsPerWakeup { startWatching() }
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
                    backOff(afterAcceptFailure: error.errno)
                    return
                default:
                    // Whatever it is, it may well persist: backed off like exhaustion, not retried every turn.
                    backOff(afterAcceptFailure: error.errno)
                    return
                }
            }
        }
    }

    /// Connections accepted per readable event at most.
    public static let acceptsPerWakeup = 64

    private func backOff(afterAcceptFailure code: Int32) {
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
        closeHeldAccepts()
    }
}
