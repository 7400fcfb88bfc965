import HTTP1

/// Who may act. Bound to loopback, the gateway still refuses what a hostile page could make a visitor's browser
/// do: requests naming another Host (DNS rebinding) and POST/DELETE from another Origin. With a token, mutating
/// requests must carry it as `Authorization: Bearer …`.
struct AccessPolicy {
    let loopbackOnly: Bool
    let boundHost: String
    let port: UInt16
    let token: String?

    private static let loopbackNames: Set<String> = ["localhost", "127.0.0.1", "[::1]", "::1"]

    func check(_ request: HTTPRequest) -> GatewayError? {
        if loopbackOnly, let host = request.headers["Host"] {
            let name = Self.hostName(host)
            guard Self.isLoopbackName(name) || name == boundHost || name.lowercased() == boundHost.lowercased() else {
                return .forbidden("Host '\(host)' is not this gateway's; use http://localhost:\(port)/")
            }
        }
        let mutating = request.method == "POST" || request.method == "DELETE" || request.method == "PUT" || request.method == "PATCH"
        guard mutating else { return nil }
        if let origin = request.headers["Origin"], origin != "null" || loopbackOnly {
            guard isOwnOrigin(origin, host: request.headers["Host"]) else {
                return .forbidden("requests from origin \(origin) may not change this gateway")
            }
        }
        if let token {
            let given = request.headers["Authorization"] ?? ""
            guard given.hasPrefix("Bearer "), Self.constantTimeEquals(Array(given.utf8.dropFirst(7)), Array(token.utf8)) else {
                return .forbidden("this gateway needs Authorization: Bearer <token> to change anything")
            }
        }
        return nil
    }

    private func isOwnOrigin(_ origin: String, host: String?) -> Bool {
        let lower = origin.lowercased()
        guard lower.hasPrefix("http://") else { return false }
        let authority = String(lower.dropFirst(7))
        if let host, authority == host.lowercased() { return true }
        let name = Self.hostName(authority)
        let portText = authority.split(separator: ":").last.map(String.init) ?? ""
        return (Self.loopbackNames.contains(name) || name == boundHost.lowercased()) && portText == String(port)
    }

    /// `localhost:8080` → `localhost`, `[::1]:8080` → `[::1]`.
    static func hostName(_ host: String) -> String {
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") { return String(host[...close]) }
        guard let colon = host.firstIndex(of: ":") else { return host }
        return String(host[..<colon])
    }

    /// 127.x.x.x, [::1], ::1 or localhost in any case: checked without allocating, as it runs per request.
    static func isLoopbackName(_ name: String) -> Bool {
        if name.hasPrefix("127.") || name == "[::1]" || name == "::1" { return true }
        return name.utf8.count == 9 && name.utf8.elementsEqual("localhost".utf8) { $0 | 0x20 == $1 }
    }

    /// Compares without an early exit, so the time taken says nothing about how much of a guess was right.
    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }
}
