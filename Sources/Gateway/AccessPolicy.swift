import HTTP1
import HTTPServer

/// Who may act.
///
/// - `Host` must name this gateway (`HostAllowList`): a page on a rebinding name (`127.0.0.1.evil.example`) gets
///   403 before anything runs. Bound to a wildcard address with no `--allowed-host`, there is no name to hold Host
///   to; the gateway is then off loopback, where the token guards the API.
/// - POST/DELETE from a browser must come from an `Origin` in the same set (403 otherwise); never one derived from
///   the request's own Host, which a rebinding page chooses.
/// - With a token, changes need `Authorization: Bearer …`; off loopback every `/api/` request does, reads
///   included, and `/metrics` unless `--metrics-public`. A missing or wrong token is 401 with `WWW-Authenticate`.
struct AccessPolicy {
    let loopbackOnly: Bool
    let hosts: HostAllowList
    let metricsPublic: Bool
    /// Whether Host and Origin are checked (see the type's note on wildcard addresses).
    private let checksNames: Bool
    private let token: [UInt8]?
    private let hostMemo = HostMemo()

    init(loopbackOnly: Bool, hosts: HostAllowList, token: String?, metricsPublic: Bool) {
        self.loopbackOnly = loopbackOnly
        self.hosts = hosts
        self.metricsPublic = metricsPublic
        checksNames = loopbackOnly || hosts.knowsItsNames
        self.token = token.flatMap { $0.isEmpty ? nil : Array($0.utf8) }
    }

    func check(_ request: HTTPRequest) -> GatewayError? {
        // No Host at all comes only from HTTP/1.0 clients (the parser requires it of 1.1); a browser always sends one.
        if checksNames, request.head.isAbsoluteForm, let authority = request.head.absoluteFormAuthority {
            // Sent as to a proxy: the target's authority names the host, and Host is ignored (RFC 9112 §3.2.2).
            var name = authority
            if !name.withUTF8({ hosts.matchesHost($0) }) {
                return .forbidden("the request target names '\(authority)', not this gateway; use http://localhost:\(hosts.port)/")
            }
        } else if checksNames, !request.headers.withFirstValue("host", { host in
            host.map { hostMemo.isAccepted($0, check: hosts.matchesHost) } ?? true
        }) {
            let host = request.headers["Host"] ?? ""
            return .forbidden("Host '\(host)' is not a name of this gateway; use http://localhost:\(hosts.port)/, or start it with --allowed-host NAME for a reverse proxy's name")
        }
        // Every method that changes something starts with P or D; the first byte spares GET and HEAD four string
        // comparisons on every request.
        let method = request.method
        let initial = method.utf8.first
        let changes = (initial == UInt8(ascii: "P") || initial == UInt8(ascii: "D"))
            && (method == "POST" || method == "DELETE" || method == "PUT" || method == "PATCH")
        if changes, checksNames, let refusal = checkOrigin(request) { return refusal }
        // A page on another site can make a browser GET the API too (an <img> or <script> naming
        // /api/fetch?targets=…: no Origin is sent, and Host is ours). Browsers say where a request comes from in
        // Sec-Fetch-Site; a cross-site one may load the page but not drive the API. curl and other clients do not
        // send it, so they are not affected.
        let isAPI = Self.isAPIPath(request.path)
        if checksNames, isAPI,
           request.headers.withFirstValue("sec-fetch-site", { $0.map { $0.elementsEqual("cross-site".utf8) } ?? false }) {
            return .forbidden("a page on another site may not use this gateway's API (Sec-Fetch-Site: cross-site)")
        }
        guard let token else { return nil }
        let needsToken = changes || (!loopbackOnly && (isAPI || (request.path == "/metrics" && !metricsPublic)))
        guard needsToken else { return nil }
        let given = request.headers.withFirstValue("authorization") { value -> Bool in
            guard let value else { return false }
            return Self.bearerToken(in: value).map { Self.constantTimeEquals($0, token) } ?? false
        }
        guard given else {
            return .unauthorized(loopbackOnly ? "this gateway needs Authorization: Bearer <token> to change anything"
                                              : "this gateway needs Authorization: Bearer <token> on every /api/ request")
        }
        return nil
    }

    /// Whether `path` is under `/api/`, by its bytes: asked of every request, where `hasPrefix` is a call that
    /// costs more than the whole check (~80 instructions).
    private static func isAPIPath(_ path: String) -> Bool {
        let prefix: (UInt8, UInt8, UInt8, UInt8, UInt8) = (0x2F, 0x61, 0x70, 0x69, 0x2F)  // "/api/"
        return path.utf8.withContiguousStorageIfAvailable { bytes in
            bytes.count > 5 && bytes[0] == prefix.0 && bytes[1] == prefix.1 && bytes[2] == prefix.2
                && bytes[3] == prefix.3 && bytes[4] == prefix.4
        } ?? path.hasPrefix("/api/")
    }

    /// An `Origin` of "null" (a sandboxed page, a file) is refused on loopback, where no token may stand in for it.
    private func checkOrigin(_ request: HTTPRequest) -> GatewayError? {
        let allowed = request.headers.withFirstValue("origin") { value -> Bool in
            guard let value else { return true }
            if !loopbackOnly && value.elementsEqual("null".utf8) { return true }
            return hosts.matchesOrigin(value)
        }
        guard !allowed else { return nil }
        return .forbidden("requests from origin \(request.headers["Origin"] ?? "") may not change this gateway")
    }

    /// The token of `Bearer TOKEN` (the scheme in any case, RFC 9110), or nil for another scheme.
    private static func bearerToken(in value: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
        let scheme = "bearer "
        guard value.count > scheme.utf8.count,
              zip(scheme.utf8, value).allSatisfy({ $0 == $1 | ($1 >= 0x41 && $1 <= 0x5A ? 0x20 : 0) }) else { return nil }
        return UnsafeBufferPointer(rebasing: value[scheme.utf8.count...])
    }

    /// Compares without an early exit, so the time taken says nothing about how much of a guess was right.
    static func constantTimeEquals(_ a: UnsafeBufferPointer<UInt8>, _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            let x = index < a.count ? a[index] : 0
            let y = index < b.count ? b[index] : 0
            difference |= x ^ y
        }
        return difference == 0
    }
}
