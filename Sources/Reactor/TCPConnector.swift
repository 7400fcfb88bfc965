#if canImport(Glibc)
import Glibc
#endif
import CReactor

/// One non-blocking connect: waits for writability, then reads SO_ERROR to learn the outcome. Reports refused,
/// unreachable and timed-out distinctly, never from inside the constructor. A socket that connects is handed on
/// still registered (`registered: true`), so the connection takes it over with one interest change.
public final class TCPConnector: IOHandler {
    private unowned let reactor: Reactor
    private var fd: Int32 = -1
    private var completion: ((Result<Int32, ConnectError>, _ registered: Bool) -> Void)?
    private var timer: TimerHandle?

    init(reactor: Reactor, address: SocketAddress, timeout: Double?,
         completion: @escaping (Result<Int32, ConnectError>, _ registered: Bool) -> Void) {
        self.reactor = reactor
        self.completion = completion
        do {
            fd = try Socket.makeStream(for: address, nonBlocking: true)
        } catch {
            report(.failure(ConnectError(errno: error.errno, call: "socket")))
            return
        }
        let result = address.withSockAddr { Glibc.connect(fd, $0, $1) }
        if result == 0 {
            report(.success(fd))
            return
        }
        let code = errno
        guard code == EINPROGRESS else {
            closeSocket()
            report(.failure(ConnectError(errno: code, call: "connect")))
            return
        }
        do {
            try reactor.register(fd: fd, interest: .write, handler: self)
        } catch {
            closeSocket()
            report(.failure(.failed(SystemError("register", errno: EBADF))))
            return
        }
        if let timeout {
            timer = reactor.callLater(timeout) { [weak self] in self?.timedOut() }
        }
    }

    /// Gives up on the attempt; the completion is never called.
    public func cancel() {
        completion = nil
        timer?.cancel()
        if fd >= 0 {
            reactor.unregister(fd: fd)
            closeSocket()
        }
    }

    private func report(_ result: Result<Int32, ConnectError>) {
        reactor.callSoon { [self] in
            guard let completion else {
                if case .success(let fd) = result { Glibc.close(fd) }
                return
            }
            self.completion = nil
            completion(result, false)
        }
    }

    private func closeSocket() {
        Glibc.close(fd)
        fd = -1
    }

    private func timedOut() {
        guard fd >= 0 else { return }
        reactor.unregister(fd: fd)
        closeSocket()
        report(.failure(.timedOut))
    }

    public func writable() {
        guard fd >= 0 else { return }
        timer?.cancel()
        let code = Socket.pendingError(fd)
        if code == 0, let completion {
            let connected = fd
            fd = -1
            self.completion = nil
            completion(.success(connected), true)
        } else {
            reactor.unregister(fd: fd)
            closeSocket()
            report(.failure(code == 0 ? .failed(SystemError("connect", errno: ECANCELED)) : ConnectError(errno: code, call: "connect")))
        }
    }

    public func reactorClosing() {
        completion = nil
        if fd >= 0 { closeSocket() }
    }

    public func readable() { writable() }
    public func hangup() { writable() }
}
