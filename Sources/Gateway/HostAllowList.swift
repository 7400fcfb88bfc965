#if canImport(Glibc)
import Glibc
#endif

/// The names a request may call this gateway by, in `Host` and in `Origin`: `localhost`, the loopback literals
/// (`127.0.0.0/8` as a full dotted quad, `::1` in any spelling, in brackets) and the bound address, each with the
/// bound port; plus the `--allowed-host` names (a reverse proxy's public name, with whatever port the proxy uses).
///
/// Nothing here is derived from the request: a name such as `127.0.0.1.evil.example` is a DNS name like any other,
/// and only an exact entry lets it through. Literals are parsed with `inet_pton`, on a stack copy of the request's
/// bytes: the check runs on every request and allocates nothing.
struct HostAllowList: Sendable {
    let port: UInt16
    /// The bound address's bytes (4 or 16) when it is one address; nil for a wildcard (0.0.0.0, ::) or `localhost`.
    private let boundAddress: [UInt8]?
    /// Lower-case exact names from `--allowed-host`.
    private let names: [[UInt8]]
    /// `.example.org` for `*.example.org`: any name ending so (one or more labels before it).
    private let suffixes: [[UInt8]]

    /// `allowedHosts` must have passed `problem(withAllowedHost:)`.
    init(boundHost: String, port: UInt16, allowedHosts: [String]) {
        self.port = port
        boundAddress = Self.addressBytes(boundHost).flatMap { $0.allSatisfy { $0 == 0 } ? nil : $0 }
        var names: [[UInt8]] = []
        var suffixes: [[UInt8]] = []
        for host in allowedHosts {
            let lower = Array(host.lowercased().utf8)
            if lower.starts(with: Array("*.".utf8)) { suffixes.append(Array(lower.dropFirst())) } else { names.append(lower) }
        }
        self.names = names
        self.suffixes = suffixes
    }

    /// Whether the gateway knows a name it can check Host against: bound to a wildcard address with no
    /// `--allowed-host`, every name of the machine is as good as another.
    var knowsItsNames: Bool { boundAddress != nil || !names.isEmpty || !suffixes.isEmpty }

    /// Why `name` cannot be an `--allowed-host` entry, or nil when it can: a DNS name of letters, digits and
    /// hyphens, optionally `*.` before it; no port, no bare `*` (that would switch the check off).
    static func problem(withAllowedHost name: String) -> String? {
        var labels = name.split(separator: ".", omittingEmptySubsequences: false)
        if labels.first == "*" { labels.removeFirst() }
        guard !labels.isEmpty, name != "*" else { return "--allowed-host '\(name)': '*' alone would let any name through; give a name such as poetry.example.org or *.example.org" }
        for label in labels {
            guard !label.isEmpty, label.count <= 63,
                  label.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D }) else {
                return "--allowed-host '\(name)': expected a host name such as poetry.example.org or *.example.org (letters, digits, hyphens, dots; no port, no scheme)"
            }
        }
        return nil
    }

    // MARK: matching

    /// `Host`: `NAME[:PORT]` or `[V6][:PORT]`. A loopback name or the bound address without a port is taken as this
    /// gateway (a browser always sends the port unless it is the scheme's default, and it sends a loopback name only
    /// for a loopback URL, which no rebinding page has); with a port, it must be ours.
    func matchesHost(_ host: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let (name, port, bracketed) = Self.split(host) else { return false }
        if isOwnLiteralOrLocalhost(name, bracketed: bracketed) { return port == nil || port == self.port }
        return !bracketed && isAllowedName(name)
    }

    /// `Origin`: `http://AUTHORITY` for our own names (the port as the browser wrote it; none means 80), and
    /// `http://` or `https://` for an `--allowed-host` name (the proxy may terminate TLS).
    func matchesOrigin(_ origin: UnsafeBufferPointer<UInt8>) -> Bool {
        let authority: UnsafeBufferPointer<UInt8>
        let secure: Bool
        if Self.hasPrefix(origin, "http://") {
            authority = UnsafeBufferPointer(rebasing: origin[7...])
            secure = false
        } else if Self.hasPrefix(origin, "https://") {
            authority = UnsafeBufferPointer(rebasing: origin[8...])
            secure = true
        } else {
            return false
        }
        guard let (name, port, bracketed) = Self.split(authority) else { return false }
        if !secure, isOwnLiteralOrLocalhost(name, bracketed: bracketed) { return (port ?? 80) == self.port }
        return !bracketed && isAllowedName(name)
    }

    private func isOwnLiteralOrLocalhost(_ name: UnsafeBufferPointer<UInt8>, bracketed: Bool) -> Bool {
        if !bracketed && Self.equalsIgnoringCase(name, "localhost") { return true }
        return Self.withParsedAddress(name, family: bracketed ? AF_INET6 : AF_INET) { address in
            if bracketed {
                // ::1: fifteen zero bytes, then 1.
                if address.prefix(15).allSatisfy({ $0 == 0 }) && address[15] == 1 { return true }
            } else if address[0] == 127 {
                return true
            }
            guard let bound = boundAddress, bound.count == address.count else { return false }
            return bound.elementsEqual(address)
        } ?? false
    }

    private func isAllowedName(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        for allowed in names where allowed.count == name.count {
            if zip(allowed, name).allSatisfy({ $0 == $1 | Self.lowerCaseBit($1) }) { return true }
        }
        // At least one whole label before the suffix: `.example.org` is no name under example.org.
        for suffix in suffixes where name.count > suffix.count && name[0] != UInt8(ascii: ".") {
            let tail = name[(name.count - suffix.count)...]
            if zip(suffix, tail).allSatisfy({ $0 == $1 | Self.lowerCaseBit($1) }) { return true }
        }
        return false
    }

    // MARK: bytes

    /// 0x20 for an upper-case ASCII letter (OR-ing it in lower-cases the letter), 0 for anything else.
    private static func lowerCaseBit(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? 0x20 : 0 }

    /// `NAME[:PORT]` or `[V6][:PORT]` → the name (without brackets), the port if given, whether bracketed. Nil when
    /// malformed: anything after `]` but a port (`[::1].evil.example`), a port that is not 1–5 digits up to 65535.
    private static func split(_ authority: UnsafeBufferPointer<UInt8>) -> (UnsafeBufferPointer<UInt8>, UInt16?, Bool)? {
        var nameStart = 0
        var nameEnd = 0
        var rest = 0
        let bracketed = authority.first == UInt8(ascii: "[")
        if bracketed {
            guard let close = authority.firstIndex(of: UInt8(ascii: "]")) else { return nil }
            nameStart = 1
            nameEnd = close
            rest = close + 1
        } else {
            nameEnd = authority.firstIndex(of: UInt8(ascii: ":")) ?? authority.count
            rest = nameEnd
        }
        guard nameEnd > nameStart else { return nil }
        let name = UnsafeBufferPointer(rebasing: authority[nameStart..<nameEnd])
        if rest == authority.count { return (name, nil, bracketed) }
        guard authority[rest] == UInt8(ascii: ":") else { return nil }
        let digits = authority[(rest + 1)...]
        guard !digits.isEmpty, digits.count <= 5 else { return digits.isEmpty ? (name, nil, bracketed) : nil }
        var port = 0
        for byte in digits {
            guard byte >= 0x30 && byte <= 0x39 else { return nil }
            port = port * 10 + Int(byte - 0x30)
        }
        guard port <= 65535 else { return nil }
        return (name, UInt16(port), bracketed)
    }

    /// Calls `body` with the address `inet_pton` reads from `name` (4 or 16 bytes), or returns nil when `name` is
    /// not a literal of that family. The name is copied to the stack to be NUL-terminated.
    private static func withParsedAddress(_ name: UnsafeBufferPointer<UInt8>, family: Int32,
                                          _ body: (UnsafeRawBufferPointer) -> Bool) -> Bool? {
        // INET6_ADDRSTRLEN is 46; a longer name is no literal.
        guard name.count < 46 else { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { text -> Bool? in
            for index in 0..<name.count { text[index] = CChar(bitPattern: name[index]) }
            text[name.count] = 0
            return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { address -> Bool? in
                guard inet_pton(family, text.baseAddress, address.baseAddress) == 1 else { return nil }
                return body(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(address)[..<(family == AF_INET ? 4 : 16)]))
            }
        }
    }

    private static func addressBytes(_ host: String) -> [UInt8]? {
        var bare = Array(host.utf8)
        if bare.first == UInt8(ascii: "["), bare.last == UInt8(ascii: "]") { bare = Array(bare.dropFirst().dropLast()) }
        for family in [AF_INET, AF_INET6] {
            var bytes: [UInt8]?
            _ = bare.withUnsafeBufferPointer { name in
                withParsedAddress(name, family: family) { address in
                    bytes = Array(address)
                    return true
                }
            }
            if let bytes { return bytes }
        }
        return nil
    }

    private static func hasPrefix(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        let length = literal.utf8CodeUnitCount
        guard bytes.count >= length else { return false }
        for offset in 0..<length where bytes[offset] | lowerCaseBit(bytes[offset]) != literal.utf8Start[offset] { return false }
        return true
    }

    private static func equalsIgnoringCase(_ bytes: UnsafeBufferPointer<UInt8>, _ literal: StaticString) -> Bool {
        bytes.count == literal.utf8CodeUnitCount && hasPrefix(bytes, literal)
    }
}
