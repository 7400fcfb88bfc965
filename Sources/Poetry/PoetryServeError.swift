import Reactor

/// Why a poetry server could not start listening, in the blocking server's words ("Address already in use"), with
/// the errno kept so a caller can tell a port in use from other failures without comparing messages.
public struct PoetryServeError: Error, CustomStringConvertible, Sendable {
    public let address: SocketAddress
    public let reason: String
    /// The system call's errno, when a system call failed.
    public let errno: Int32?

    public init(address: SocketAddress, reason: String, errno: Int32?) {
        self.address = address
        self.reason = reason
        self.errno = errno
    }

    init(address: SocketAddress, _ error: ReactorError) {
        if case .system(let failure) = error {
            self.init(address: address, reason: failure.reason, errno: failure.errno)
        } else {
            self.init(address: address, reason: error.description, errno: nil)
        }
    }

    public var description: String { "Cannot listen on \(address): \(reason)" }
}
