#if canImport(Glibc)
import Glibc
#endif
import CReactor

/// An IPv4 or IPv6 socket address, parsed from literals only: no name look-up happens here, so a caller can decide
/// from the literal whether an address is allowed before any socket exists.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Family: Sendable, Hashable { case ipv4, ipv6 }

    public let host: String
    public let port: UInt16
    public let family: Family

    /// `host` must be an IPv4 or IPv6 literal, or `localhost` (taken as 127.0.0.1).
    public init(host: String, port: UInt16) throws(ReactorError) {
        let literal = host == "localhost" ? "127.0.0.1" : host
        let bare = literal.hasPrefix("[") && literal.hasSuffix("]") ? String(literal.dropFirst().dropLast()) : literal
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, bare, &v4) == 1 {
            family = .ipv4
        } else if inet_pton(AF_INET6, bare, &v6) == 1 {
            family = .ipv6
        } else {
            throw .invalidAddress(host)
        }
        self.host = bare
        self.port = port
    }

    private init(validatedHost host: String, port: UInt16, family: Family) {
        self.host = host
        self.port = port
        self.family = family
    }

    /// The same host with another port (the one the system chose for port 0, say).
    public func withPort(_ port: UInt16) -> SocketAddress {
        SocketAddress(validatedHost: host, port: port, family: family)
    }

    /// Parses `PORT`, `HOST:PORT` or `[V6]:PORT`; the host defaults to `defaultHost`.
    public init(parsing text: String, defaultHost: String = "127.0.0.1") throws(ReactorError) {
        var hostPart = defaultHost
        var portPart = Substring(text)
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            hostPart = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw .invalidAddress(text) }
            portPart = rest.dropFirst()
        } else if let colon = text.lastIndex(of: ":") {
            hostPart = String(text[..<colon])
            portPart = text[text.index(after: colon)...]
            guard !hostPart.contains(":") else { throw .invalidAddress(text) }
        }
        guard let port = UInt16(portPart), !hostPart.isEmpty else { throw .invalidAddress(text) }
        try self.init(host: hostPart, port: port)
    }

    /// Whether the address is on this machine's loopback: 127.0.0.0/8, or ::1 or an IPv4-mapped 127.x address
    /// (`::ffff:127.0.0.1`) in any IPv6 spelling, judged on the parsed bytes.
    public var isLoopback: Bool {
        switch family {
        case .ipv4:
            return host.hasPrefix("127.")
        case .ipv6:
            var v6 = in6_addr()
            guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
            return withUnsafeBytes(of: &v6) { bytes in
                let loopback = bytes[0..<15].allSatisfy { $0 == 0 } && bytes[15] == 1
                let mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF && bytes[12] == 127
                return loopback || mapped
            }
        }
    }

    /// `127.0.0.1:10000`, or `[::1]:10000`.
    public var description: String {
        family == .ipv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// As the seed's Python prints a peer: `('127.0.0.1', 54321)`.
    public var pythonTuple: String { "('\(host)', \(port))" }

    /// Calls `body` with a sockaddr for this address.
    public func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        switch family {
        case .ipv4:
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = port.bigEndian
            inet_pton(AF_INET, host, &addr.sin_addr)
            return withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .ipv6:
            var addr = sockaddr_in6()
            addr.sin6_family = sa_family_t(AF_INET6)
            addr.sin6_port = port.bigEndian
            inet_pton(AF_INET6, host, &addr.sin6_addr)
            return withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }

    /// Reads a sockaddr filled in by accept/getsockname/getpeername.
    public init?(storage: inout sockaddr_storage) {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(storage.ss_family) {
        case AF_INET:
            let (text, port): (String, UInt16) = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var addr = sin.pointee.sin_addr
                    inet_ntop(AF_INET, &addr, &buffer, socklen_t(buffer.count))
                    return (String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self), UInt16(bigEndian: sin.pointee.sin_port))
                }
            }
            host = text; self.port = port; family = .ipv4
        case AF_INET6:
            let (text, port): (String, UInt16) = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                    var addr = sin.pointee.sin6_addr
                    inet_ntop(AF_INET6, &addr, &buffer, socklen_t(buffer.count))
                    return (String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self), UInt16(bigEndian: sin.pointee.sin6_port))
                }
            }
            host = text; self.port = port; family = .ipv6
        default:
            return nil
        }
    }

    public static func local(of fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return result == 0 ? SocketAddress(storage: &storage) : nil
    }

    public static func peer(of fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        return result == 0 ? SocketAddress(storage: &storage) : nil
    }
}
