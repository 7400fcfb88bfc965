#if canImport(Glibc)
import Glibc
#endif
import CReactor

/// Why a connection ended.
public enum ConnectionLossReason: Error, Sendable, Equatable, CustomStringConvertible {
    /// The peer closed cleanly (end of stream), or we closed after flushing.
    case done
    /// The peer reset the connection (ECONNRESET) or vanished mid-write (EPIPE).
    case reset
    /// This side aborted (RST), e.g. because the work behind it was cancelled.
    case aborted
    case failed(SystemError)

    public var description: String {
        switch self {
        case .done: return "Connection closed cleanly"
        case .reset: return "Connection reset by peer"
        case .aborted: return "Connection aborted"
        case .failed(let error): return error.reason
        }
    }
}

/// Why an outgoing connection never opened.
public enum ConnectError: Error, Sendable, Equatable, CustomStringConvertible {
    case refused
    case unreachable
    case timedOut
    case failed(SystemError)
    /// The socket connected but the reactor could not watch it (select past FD_SETSIZE, a failed epoll_ctl).
    case unwatchable(ReactorError)

    init(errno code: Int32, call: String) {
        switch code {
        case ECONNREFUSED: self = .refused
        case ENETUNREACH, EHOSTUNREACH: self = .unreachable
        case ETIMEDOUT: self = .timedOut
        default: self = .failed(SystemError(call, errno: code))
        }
    }

    public var description: String {
        switch self {
        case .refused: return "Connection refused"
        case .unreachable: return "Network is unreachable"
        case .timedOut: return "Connection timed out"
        case .failed(let error): return error.reason
        case .unwatchable(let error): return error.description
        }
    }
}

/// The protocol side of a connection, as in Twisted: it hears about bytes and endings and never touches a socket.
/// All calls come on the reactor thread.
public protocol ConnectionHandler: AnyObject {
    func connectionMade(_ connection: TCPConnection)
    /// `bytes` is a view into the reactor's shared read buffer, valid only during the call: copy what you keep.
    func dataReceived(_ bytes: UnsafeRawBufferPointer)
    /// The peer shut down its sending side. Return true to keep writing (half-open); false closes.
    func readEOF() -> Bool
    /// The write buffer passed the high watermark (false) or drained below the low one (true).
    func writabilityChanged(_ writable: Bool)
    /// Some queued output was sent; `remaining` bytes are still queued. Called only when output had to queue, so a
    /// send deadline can measure progress; also when output that counted as sent is queued again (on io_uring,
    /// the kernel took less of a turn's send than was handed over: `remaining` then grew).
    func outputFlushed(remaining: Int)
    func connectionLost(_ reason: ConnectionLossReason)
    /// Only for outgoing connections that never opened.
    func connectionFailed(_ error: ConnectError)
}

extension ConnectionHandler {
    public func readEOF() -> Bool { false }
    public func writabilityChanged(_ writable: Bool) {}
    public func outputFlushed(remaining: Int) {}
    public func connectionFailed(_ error: ConnectError) {}
}
