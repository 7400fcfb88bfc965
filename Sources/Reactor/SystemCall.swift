#if canImport(Glibc)
import Glibc
#endif

/// The one way the reactor's transports make a system call that may be interrupted or would block (after
/// SwiftNIO's `syscall(blocking:)`): EINTR is retried, EAGAIN/EWOULDBLOCK comes back as `.wouldBlock`, and any other
/// failure throws a `SystemError` that names the call and keeps its errno, so nothing reaching a user is made up.
/// Inlined, and the call's name is built only on failure, so the hot read and write paths pay nothing for it.
public enum SystemCall {
    /// A call on a non-blocking descriptor that returns -1 and sets errno on failure.
    @inline(__always)
    public static func nonBlocking(_ name: @autoclosure () -> String, _ call: () -> Int) throws(SystemError) -> IOResult<Int> {
        while true {
            let result = call()
            if result >= 0 { return .processed(result) }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN || code == EWOULDBLOCK { return .wouldBlock }
            throw SystemError(name(), errno: code)
        }
    }

    /// The same for calls returning `Int32` (accept4, connect…).
    @inline(__always)
    public static func nonBlocking(_ name: @autoclosure () -> String, _ call: () -> Int32) throws(SystemError) -> IOResult<Int32> {
        switch try nonBlocking(name(), { Int(call()) }) {
        case .processed(let value): return .processed(Int32(truncatingIfNeeded: value))
        case .wouldBlock: return .wouldBlock
        }
    }

    /// A blocking call: EINTR is retried, any failure throws.
    @inline(__always)
    public static func blocking(_ name: @autoclosure () -> String, _ call: () -> Int) throws(SystemError) -> Int {
        while true {
            let result = call()
            if result >= 0 { return result }
            let code = errno
            if code == EINTR { continue }
            throw SystemError(name(), errno: code)
        }
    }
}
