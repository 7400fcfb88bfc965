import HTTP1
import HTTPServer

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
        if loopbackOnly, !request.headers.withFirstValue("host", { $0.map(isOwnHost) ?? true }) {
            let host = request.headers["Host"] ?? ""
            return .forbidden("Host '\(host)' is not this gateway's; use http://localhost:\(port)/")
        }
        switch request.method {
        case "GET", "HEAD": return nil
        case "POST", "DELETE", "PUT", "PATCH": break
        default: return nil
        }
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

    /// A loopback name or the address we are bound to, with any port; checked on the bytes, as it runs per request.
    private func isOwnHost(_ host: UnsafeBufferPointer<UInt8>) -> Bool {
        var end = 0
        if host.first == UInt8(ascii: "[") {
            while end < host.count && host[end] != UInt8(ascii: "]") { end += 1 }
            end = min(end + 1, host.count)
        } else {
            while end < host.count && host[end] != UInt8(ascii: ":") { end += 1 }
        }
        let name = UnsafeBufferPointer(rebasing: host[..<end])
        if Self.isLoopbackName(name) { return true }
        return boundHost.utf8.count == name.count && boundHost.utf8.elementsEqual(name) { ($0 | 0x20) == ($1 | 0x20) }
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
        let utf8 = host.utf8
        if utf8.first == UInt8(ascii: "["), let close = utf8.firstIndex(of: UInt8(ascii: "]")) { return String(host[...close]) }
        guard let colon = utf8.firstIndex(of: UInt8(ascii: ":")) else { return host }
        return String(host[..<colon])
    }

    /// 127.x.x.x, [::1], ::1 or localhost in any case.
    static func isLoopbackName(_ name: UnsafeBufferPointer<UInt8>) -> Bool {
        func matches(_ literal: StaticString, prefix: Bool = false, ignoringCase: Bool = false) -> Bool {
            let length = literal.utf8CodeUnitCount
            guard prefix ? name.count >= length : name.count == length else { return false }
            for offset in 0..<length {
                let byte = ignoringCase ? name[offset] | 0x20 : name[offset]
                if byte != literal.utf8Start[offset] { return false }
            }
            return true
        }
        return matches("127.", prefix: true) || matches("[::1]") || matches("::1") || matches("localhost", ignoringCase: true)
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
