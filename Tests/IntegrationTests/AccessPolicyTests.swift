import Foundation
@testable import Gateway
import HTTP1
import HTTPServer
import TestSupport
import Testing

@Suite("Who may act: Host and Origin names, --allowed-host, tokens off loopback")
struct AccessPolicyTests {
    /// Names a rebinding page can point at 127.0.0.1: DNS names like any other, whatever their first labels say.
    @Test func rebindingNamesAreRefused() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let port = gateway.port
        for host in ["127.evil.example:\(port)", "127.0.0.1.evil.example:\(port)", "127.0.0.1.nip.io:\(port)",
                     "[::1].evil.example:\(port)", "localhost.evil.example:\(port)", "evil.example:\(port)",
                     "127.1:\(port)", "127.0.0.1:\(port + 1)", "localhost:\(port)0", "[::2]:\(port)", "[::1:\(port)",
                     "127.0.0.1:\(port):\(port)", "[::ffff:7f00:1]:\(port)", "0x7f.0.0.1:\(port)"] {
            let response = CurlClient().request("\(gateway.url)/api/poems", headers: ["Host: \(host)"])
            #expect(response.status == 403, "Host: \(host) → \(response.status)")
            #expect(response.text.contains("not a name of this gateway"), "Host: \(host) → \(response.text)")
        }
    }

    /// A request sent as to a proxy (absolute-form target) names its host in the target, and RFC 9112 §3.2.2 says
    /// the Host header is then ignored: the target's authority is what is checked.
    @Test func anAbsoluteFormTargetIsCheckedByItsAuthorityNotItsHost() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let port = gateway.port
        func status(target: String, host: String) throws -> String {
            let client = try RawClient(port: port)
            client.send("GET \(target) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
            return String(client.readUntilClosed().text.prefix(12))
        }
        #expect(try status(target: "http://evil.example:\(port)/api/poems", host: "127.0.0.1:\(port)") == "HTTP/1.1 403")
        #expect(try status(target: "HTTP://127.0.0.1.evil.example/api/poems", host: "localhost:\(port)") == "HTTP/1.1 403")
        #expect(try status(target: "http://localhost:\(port)/api/poems", host: "evil.example") == "HTTP/1.1 200")
        #expect(try status(target: "http://[::1]:\(port)?x=1", host: "evil.example") == "HTTP/1.1 200")
    }

    /// A page on another site can make a browser GET the API (an <img> naming /api/fetch?targets=…) with our own
    /// Host and no Origin; the browser's Sec-Fetch-Site says where it came from, and a cross-site one is refused.
    /// The page itself, same-origin API calls and clients that send no such header are not affected.
    @Test func crossSiteBrowserRequestsMayNotUseTheAPI() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let crossSite = CurlClient().request("\(gateway.url)/api/fetch?targets=1", headers: ["Sec-Fetch-Site: cross-site"])
        #expect(crossSite.status == 403, "\(crossSite.text)")
        #expect(crossSite.text.contains("another site"))
        #expect(CurlClient().request("\(gateway.url)/api/poems", headers: ["Sec-Fetch-Site: same-origin"]).status == 200)
        #expect(CurlClient().request("\(gateway.url)/api/poems").status == 200)
        #expect(CurlClient().request("\(gateway.url)/", headers: ["Sec-Fetch-Site: cross-site"]).status == 200)
    }

    @Test func loopbackNamesAreAccepted() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let port = gateway.port
        for host in ["localhost:\(port)", "LocalHost:\(port)", "127.0.0.1:\(port)", "127.200.3.4:\(port)", "[::1]:\(port)",
                     "[0:0:0:0:0:0:0:1]:\(port)", "[0::1]:\(port)", "[::0:1]:\(port)", "localhost", "127.0.0.1"] {
            let response = CurlClient().request("\(gateway.url)/api/poems", headers: ["Host: \(host)"])
            #expect(response.status == 200, "Host: \(host) → \(response.status) \(response.text)")
        }
    }

    /// Origin is held to the same names, never to the request's own Host (which a rebinding page chooses).
    @Test func originIsCheckedAgainstTheGatewaysNamesNotTheRequestsHost() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let port = gateway.port
        let body = Array(#"{"poem":"science"}"#.utf8)
        for origin in ["http://127.evil.example:\(port)", "http://127.0.0.1.nip.io:\(port)", "http://localhost:\(port + 1)",
                       "http://localhost", "https://localhost:\(port)", "null", "http://[::1].evil.example:\(port)"] {
            let response = CurlClient().request("POST", "\(gateway.url)/api/servers", headers: ["Origin: \(origin)"], body: body)
            #expect(response.status == 403, "Origin: \(origin) → \(response.status)")
        }
        // A page on port 80 of this machine names itself in Origin exactly as a portless Host would: still not us.
        let portless = CurlClient().request("POST", "\(gateway.url)/api/servers", headers: ["Host: localhost", "Origin: http://localhost"], body: body)
        #expect(portless.status == 403, "\(portless.text)")
        for origin in ["http://localhost:\(port)", "http://127.0.0.1:\(port)", "http://[::1]:\(port)"] {
            let response = CurlClient().request("POST", "\(gateway.url)/api/servers", headers: ["Origin: \(origin)"], body: body)
            #expect(response.status == 201, "Origin: \(origin) → \(response.status) \(response.text)")
        }
    }

    /// A reverse proxy forwarding its public name: let through by --allowed-host, exactly or by wildcard.
    @Test func anAllowedHostLetsAProxiedNameThrough() throws {
        let gateway = try TestGateway { $0.allowedHosts = ["poetry.example.org", "*.proxy.test"] }
        defer { gateway.stop() }
        for host in ["poetry.example.org", "Poetry.Example.org:443", "a.proxy.test", "b.a.proxy.test:8443", "localhost:\(gateway.port)"] {
            let response = CurlClient().request("\(gateway.url)/api/poems", headers: ["Host: \(host)"])
            #expect(response.status == 200, "Host: \(host) → \(response.status) \(response.text)")
        }
        for host in ["proxy.test", "poetry.example.org.evil.example", "xpoetry.example.org", "aproxy.test", "127.0.0.1.proxy.test.evil", ".proxy.test"] {
            let response = CurlClient().request("\(gateway.url)/api/poems", headers: ["Host: \(host)"])
            #expect(response.status == 403, "Host: \(host) → \(response.status)")
        }
        let body = Array(#"{"poem":"science"}"#.utf8)
        let proxied = CurlClient().request("POST", "\(gateway.url)/api/servers",
                                           headers: ["Host: poetry.example.org", "Origin: https://poetry.example.org"], body: body)
        #expect(proxied.status == 201, "\(proxied.text)")
        let foreign = CurlClient().request("POST", "\(gateway.url)/api/servers",
                                           headers: ["Host: poetry.example.org", "Origin: https://evil.example"], body: body)
        #expect(foreign.status == 403)
    }

    @Test(arguments: ["*", "poetry.example.org:8080", "http://poetry.example.org", "", "a..b", "*.", "bad_name.example"])
    func aMeaninglessAllowedHostIsRefusedAtStart(name: String) {
        #expect(HostAllowList.problem(withAllowedHost: name) != nil, "\(name)")
        #expect(throws: (any Error).self) { _ = try TestGateway { $0.allowedHosts = [name] } }
    }

    @Test func aMissingOrWrongTokenIs401WithAChallenge() throws {
        let gateway = try TestGateway { $0.token = "s3cret" }
        defer { gateway.stop() }
        let body = Array(#"{"poem":"science"}"#.utf8)
        for headers in [[], ["Authorization: Bearer wrong"], ["Authorization: Basic czNjcmV0"], ["Authorization: Bearer s3cret2"]] {
            let response = CurlClient().request("POST", "\(gateway.url)/api/servers", headers: headers, body: body)
            #expect(response.status == 401, "\(headers) → \(response.status)")
            #expect(response.header("WWW-Authenticate") == #"Bearer realm="poetry-gateway""#)
            #expect(try jsonObject(response.body)["error"] as? String == "unauthorized")
        }
        #expect(CurlClient().request("POST", "\(gateway.url)/api/servers", headers: ["Authorization: bearer s3cret"], body: body).status == 201)
    }

    /// The spec tells the truth about refusals: a bearer scheme, and 401/403 on every operation that can get them.
    @Test func theOpenAPIDescriptionDeclaresTheBearerSchemeAndEveryRefusal() throws {
        let spec = try String(contentsOfFile: "\(projectRoot)/public/openapi.yaml", encoding: .utf8)
        #expect(spec.contains("  securitySchemes:\n    bearerToken:\n      type: http\n      scheme: bearer\n"))
        var operation: String?
        var path = ""
        var statuses: [String: Set<String>] = [:]
        for line in spec.split(separator: "\n") {
            if line.hasPrefix("  /") && line.hasSuffix(":") && !line.hasPrefix("   ") { path = String(line.dropFirst(2).dropLast()) }
            if let method = ["get:", "post:", "delete:"].first(where: { line == "    \($0)" }) { operation = "\(method.dropLast()) \(path)" }
            if line == "components:" { operation = nil }
            if let operation, line.hasPrefix("        \""), let status = line.split(separator: "\"").dropFirst().first {
                statuses[operation, default: []].insert(String(status))
            }
        }
        #expect(statuses.count == 9)
        for (operation, codes) in statuses {
            #expect(codes.contains("403"), "\(operation) lacks 403")
            #expect(codes.contains("401") == (operation != "get /healthz"), "\(operation): 401 \(codes.contains("401"))")
        }
    }

    // MARK: off loopback, through the policy's unit (tests never listen outside loopback)

    private static func request(_ method: String, _ target: String, host: String = "192.0.2.10:8080", _ extra: [String] = []) throws -> HTTPRequest {
        var parser = HTTPRequestParser()
        let lines = ["\(method) \(target) HTTP/1.1", "Host: \(host)"] + extra
        parser.append(Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8))
        guard case .head(let head)? = try parser.next() else { throw TestFailure("no head") }
        return HTTPRequest(head: head, body: [])
    }

    private static func offLoopback(metricsPublic: Bool = false, bound: String = "192.0.2.10") -> AccessPolicy {
        AccessPolicy(loopbackOnly: false, hosts: HostAllowList(boundHost: bound, port: 8080, allowedHosts: []),
                     token: "T0k3n", metricsPublic: metricsPublic)
    }

    @Test func offLoopbackEveryAPIRequestNeedsTheToken() throws {
        let policy = Self.offLoopback()
        for (method, target) in [("GET", "/api/fetch?targets=22"), ("GET", "/api/poems"), ("GET", "/api/servers"), ("HEAD", "/api/fetch?targets=22"),
                                 ("GET", "/api/reactor"), ("POST", "/api/servers"), ("DELETE", "/api/servers/1"), ("GET", "/metrics")] {
            for extra in [[], ["Authorization: Bearer wrong"], ["Authorization: Bearer T0k3n0"]] {
                let refusal = policy.check(try Self.request(method, target, extra))
                #expect(refusal?.status.code == 401, "\(method) \(target) \(extra)")
            }
            #expect(policy.check(try Self.request(method, target, ["Authorization: Bearer T0k3n"])) == nil, "\(method) \(target)")
        }
        for target in ["/", "/app.js", "/openapi.yaml", "/healthz"] {
            #expect(policy.check(try Self.request("GET", target)) == nil, "the page and health need no token: \(target)")
        }
        #expect(Self.offLoopback(metricsPublic: true).check(try Self.request("GET", "/metrics")) == nil)
    }

    @Test func offLoopbackHostIsTheBoundAddress() throws {
        let policy = Self.offLoopback()
        let token = ["Authorization: Bearer T0k3n"]
        #expect(policy.check(try Self.request("GET", "/api/poems", host: "192.0.2.10:8080", token)) == nil)
        #expect(policy.check(try Self.request("GET", "/api/poems", host: "192.0.2.10.evil.example:8080", token))?.status.code == 403)
        #expect(policy.check(try Self.request("GET", "/api/poems", host: "192.0.2.10:8081", token))?.status.code == 403)
        let v6 = Self.offLoopback(bound: "2001:db8::5")
        #expect(v6.check(try Self.request("GET", "/api/poems", host: "[2001:db8:0::5]:8080", token)) == nil)
        #expect(v6.check(try Self.request("GET", "/api/poems", host: "[2001:db8::6]:8080", token))?.status.code == 403)
        // Bound to every address, the gateway knows no name of its own: the token alone guards it.
        let wildcard = Self.offLoopback(bound: "0.0.0.0")
        #expect(wildcard.check(try Self.request("GET", "/api/poems", host: "gateway.lan:8080", token)) == nil)
        #expect(wildcard.check(try Self.request("GET", "/api/poems", host: "gateway.lan:8080"))?.status.code == 401)
    }
}
