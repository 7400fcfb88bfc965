#if canImport(Glibc)
import Glibc
#endif
import CReactor

/// A failed system call: which call, and the errno it left.
public struct SystemError: Error, CustomStringConvertible, Equatable, Sendable {
    public let call: String
    public let errno: Int32

    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    /// Captures the calling thread's current errno.
    public static func last(_ call: String) -> SystemError {
        SystemError(call, errno: Glibc.errno)
    }

    /// The C library's words for the errno ("Connection refused"), as Python prints them.
    public var reason: String { String(cString: strerror(errno)) }

    public var description: String { "\(call): \(reason)" }
}

/// Errors the reactor itself raises, beyond a failing system call.
public enum ReactorError: Error, CustomStringConvertible, Equatable, Sendable {
    case unknownBackend(String)
    case descriptorTooLarge(fd: Int32, limit: Int32)
    case invalidAddress(String)
    case system(SystemError)
    /// A backend this machine cannot give (io_uring on an old kernel, disabled, or filtered by seccomp).
    case backendUnavailable(backend: String, reason: String)

    /// The errno of the failed system call, if a system call is what failed: how a caller tells a port in use
    /// (EADDRINUSE) from other failures.
    public var errno: Int32? {
        if case .system(let error) = self { return error.errno }
        return nil
    }

    public var description: String {
        switch self {
        case .unknownBackend(let name):
            return "unknown reactor backend '\(name)' (choose \(BackendKind.allCases.map(\.rawValue).joined(separator: ", ")))"
        case .descriptorTooLarge(let fd, let limit):
            return "select cannot watch descriptor \(fd): select(2) only handles descriptors below FD_SETSIZE (\(limit)); use poll or epoll"
        case .invalidAddress(let text):
            return "invalid address '\(text)'"
        case .system(let error):
            return error.description
        case .backendUnavailable(let backend, let reason):
            return "the \(backend) reactor is not available: \(reason); use epoll"
        }
    }
}
