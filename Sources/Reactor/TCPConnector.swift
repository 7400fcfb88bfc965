#if canImport(Glibc)
import Glibc
#endif
import CReactor

/// One non-blocking connect: waits for writability, then reads SO_ERROR to learn the outcome. Reports refused,
/// unreachable and timed-out distinctly, never from inside the constructor. A socket that connects is handed on
/// still registered (`registered: true`), so the connection takes it over with one interest change.
///
/// Ownership: the connector owns its socket until it reports; the report hands the descriptor over (or closes
/// it), and from then on the connector owns nothing, so neither `cancel()` nor a late event can close a number
/// that now belongs to somebody else. Confined to its reactor's thread.
public final class TCPConnector: IOHandler {
    /// Every state says what the connector owns; `moveState` is the only way between them.
    private enum State {
        /// Registered for writability; owns `fd`.
        case connecting(fd: Int32)
        /// `connect` succeeded at once; owns `fd` until the queued report hands it over.
        case connectedAtOnce(fd: Int32)
        /// The attempt failed; the queued report will say why. Owns nothing.
        case failing(ConnectError)
        /// Reported or cancelled. Owns nothing.
        case finished
    }

    private enum Event {
        case connected, failed(ConnectError), reported, cancelled
    }

    private unowned let reactor: Reactor
    private var state = State.finished
    private var completion: ((Result<Int32, ConnectError>, _ registered: Bool) -> Void)?
    private var timer: TimerHandle?

    init(reactor: Reactor, address: SocketAddress, timeout: Double?,
         connectCall: (Int32, SocketAddress) -> Int32 = TCPConnector.systemConnect,
         completion: @escaping (Result<Int32, ConnectError>, _ registered: Bool) -> Void) {
        reactor.assertInLoop()
        self.reactor = reactor
        self.completion = completion
        let fd: Int32
        do {
            fd = try Socket.makeStream(for: address, nonBlocking: true)
        } catch {
            fail(ConnectError(errno: error.errno, call: "socket"))
            return
        }
        let result = connectCall(fd, address)
        if result == 0 {
            state = .connectedAtOnce(fd: fd)
            queueReport()
            return
        }
        let code = errno
        guard code == EINPROGRESS else {
            Glibc.close(fd)
            fail(ConnectError(errno: code, call: "connect"))
            return
        }
        do {
            try reactor.register(fd: fd, interest: .write, handler: self)
        } catch {
            Glibc.close(fd)
            fail(.unwatchable(error))
            return
        }
        state = .connecting(fd: fd)
        if let timeout {
            timer = reactor.callLater(timeout) { [weak self] in self?.timedOut() }
        }
    }

    static func systemConnect(_ fd: Int32, _ address: SocketAddress) -> Int32 {
        address.withSockAddr { Glibc.connect(fd, $0, $1) }
    }

    /// Gives up on the attempt; the completion is never called.
    public func cancel() {
        reactor.assertInLoop()
        completion = nil
        timer?.cancel()
        releaseSocket()
        moveState(.cancelled)
    }

    /// Whether the attempt has reported or been cancelled.
    public var isFinished: Bool {
        if case .finished = state { return true }
        return false
    }

    private func moveState(_ event: Event) {
        switch (state, event) {
        case (.connecting, .connected), (.connectedAtOnce, .reported), (.failing, .reported),
             (_, .cancelled):
            state = .finished
        case (.connecting, .failed(let error)):
            state = .failing(error)
        case (.finished, .failed(let error)):
            // Only from the constructor, before anything was owned.
            state = .failing(error)
        default:
            assertionFailure("TCPConnector: illegal move \(event) while \(state)")
        }
    }

    private func fail(_ error: ConnectError) {
        moveState(.failed(error))
        queueReport()
    }

    /// Reports on the next turn, never inside the constructor or the event that decided it.
    private func queueReport() {
        reactor.callSoon { [self] in
            let outcome: Result<Int32, ConnectError>
            switch state {
            case .connectedAtOnce(let fd): outcome = .success(fd)
            case .failing(let error): outcome = .failure(error)
            case .connecting, .finished: return  // cancelled meanwhile: nothing left to hand over
            }
            moveState(.reported)
            let completion = self.completion
            self.completion = nil
            completion?(outcome, false)
        }
    }

    /// Closes the socket the current state owns, if any (unregistering it first when it is watched).
    private func releaseSocket() {
        switch state {
        case .connecting(let fd):
            reactor.unregister(fd: fd, closing: true)
            Glibc.close(fd)
        case .connectedAtOnce(let fd):
            Glibc.close(fd)
        case .failing, .finished:
            break
        }
    }

    private func timedOut() {
        guard case .connecting = state else { return }
        releaseSocket()
        fail(.timedOut)
    }

    public func writable() {
        guard case .connecting(let fd) = state else { return }
        timer?.cancel()
        let code = Socket.pendingError(fd)
        guard code == 0 else {
            releaseSocket()
            fail(ConnectError(errno: code, call: "connect"))
            return
        }
        moveState(.connected)
        let completion = self.completion
        self.completion = nil
        completion?(.success(fd), true)
    }

    public func reactorClosing() {
        completion = nil
        switch state {
        case .connecting(let fd), .connectedAtOnce(let fd): Glibc.close(fd)
        case .failing, .finished: break
        }
        state = .finished
    }

    public func readable() { writable() }
    public func hangup() { writable() }
}
