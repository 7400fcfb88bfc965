#if canImport(Glibc)
import Glibc
#endif
import CReactor

/// The few socket system calls every layer needs, with errors turned into `SystemError`. Blocking callers (the
/// seed's blocking server and client) use these too; only the reactor's transports make sockets non-blocking.
public enum Socket {
    /// A TCP socket bound and listening on `address` with SO_REUSEADDR; port 0 lets the system choose. With
    /// `reusePort`, several sockets (one per reactor thread) may listen on one port and the kernel spreads the
    /// connections among them.
    public static func listen(on address: SocketAddress, backlog: Int32 = 1024, nonBlocking: Bool,
                              reusePort: Bool = false) throws(SystemError) -> Int32 {
        let family = address.family == .ipv4 ? AF_INET : AF_INET6
        let flags = Int32(SOCK_STREAM.rawValue) | CREACTOR_SOCK_CLOEXEC | (nonBlocking ? CREACTOR_SOCK_NONBLOCK : 0)
        let fd = socket(family, flags, 0)
        guard fd >= 0 else { throw .last("socket") }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        if reusePort { setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, socklen_t(MemoryLayout<Int32>.size)) }
        let bound = address.withSockAddr { bind(fd, $0, $1) }
        guard bound == 0 else {
            let error = SystemError.last("bind")
            close(fd)
            throw error
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let error = SystemError.last("listen")
            close(fd)
            throw error
        }
        return fd
    }

    /// Binds a plain socket (no SO_REUSEPORT) to `address` and lets it go, returning the port it got. Listeners
    /// that share a port with SO_REUSEPORT would also share it, silently, with another server of the same user
    /// already there; this bind fails with EADDRINUSE in that case, so the caller can say so instead.
    public static func claimPort(_ address: SocketAddress) throws(SystemError) -> UInt16 {
        let fd = try makeStream(for: address, nonBlocking: false)
        defer { close(fd) }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        guard address.withSockAddr({ bind(fd, $0, $1) }) == 0 else { throw .last("bind") }
        return SocketAddress.local(of: fd)?.port ?? address.port
    }

    /// A new TCP socket for `family`.
    public static func makeStream(for address: SocketAddress, nonBlocking: Bool) throws(SystemError) -> Int32 {
        let family = address.family == .ipv4 ? AF_INET : AF_INET6
        let flags = Int32(SOCK_STREAM.rawValue) | CREACTOR_SOCK_CLOEXEC | (nonBlocking ? CREACTOR_SOCK_NONBLOCK : 0)
        let fd = socket(family, flags, 0)
        guard fd >= 0 else { throw .last("socket") }
        return fd
    }

    /// Bytes the kernel still holds in the socket's send queue, unsent or unacknowledged (SIOCOUTQ); 0 on error.
    public static func unsentBytes(_ fd: Int32) -> Int {
        var count: Int32 = 0
        return ioctl(fd, UInt(TIOCOUTQ), &count) == 0 ? Int(count) : 0
    }

    public static func setNoDelay(_ fd: Int32) {
        var on: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Makes the next close send RST instead of FIN: an abort.
    public static func setLingerZero(_ fd: Int32) {
        var value = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &value, socklen_t(MemoryLayout<linger>.size))
    }

    /// The error a non-blocking connect ended with (0 when it succeeded).
    public static func pendingError(_ fd: Int32) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &value, &length)
        return value
    }

    /// Blocking receive/send time-outs (SO_RCVTIMEO/SO_SNDTIMEO); zero means none.
    public static func setTimeouts(_ fd: Int32, seconds: Double) {
        guard seconds > 0 else { return }
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sends all of `bytes` on a blocking socket, without SIGPIPE.
    public static func sendAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            let start = bytes.baseAddress! + offset
            let length = bytes.count - offset
            offset += try SystemCall.blocking("send") { send(fd, start, length, CREACTOR_MSG_NOSIGNAL) }
        }
    }
}
