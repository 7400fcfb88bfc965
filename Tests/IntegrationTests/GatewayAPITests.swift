#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Gateway
import Reactor
import Testing

@Suite("Gateway API: poems, servers, errors, who may act")
struct GatewayAPITests {
    @Test func poemsAreListedWithTitlesAndSizes() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let response = CurlClient().request("\(gateway.url)/api/poems")
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "application/json")
        let poems = try jsonArray(response.body)
        #expect(poems.map { $0["name"] as? String } == ["alla_sera", "ecstasy", "fascination", "science"])
        #expect(poems[1]["bytes"] as? Int == 3003)
        #expect(poems[1]["title"] as? String == "The Ecstasy")
    }

    @Test func serversStartListAndStop() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let client = CurlClient()
        let created = client.request("POST", "\(gateway.url)/api/servers", body: Array(#"{"poem":"science","mode":"async","numBytes":20,"delay":0.01}"#.utf8))
        #expect(created.status == 201)
        let server = try jsonObject(created.body)
        let id = try #require(server["id"] as? Int)
        #expect(created.header("Location") == "/api/servers/\(id)")
        #expect(server["poem"] as? String == "science")
        #expect(server["mode"] as? String == "async")
        #expect(server["host"] as? String == "127.0.0.1")
        #expect(server["numBytes"] as? Int == 20)
        #expect(server["delay"] as? Double == 0.01)
        #expect(server["clients"] as? Int == 0)
        let port = try #require(server["port"] as? Int)
        #expect(port > 0)

        let defaults = try jsonObject(client.request("POST", "\(gateway.url)/api/servers", body: Array(#"{"poem":"ecstasy"}"#.utf8)).body)
        #expect(defaults["mode"] as? String == "blocking")
        #expect(defaults["numBytes"] as? Int == 10)
        #expect(defaults["delay"] as? Double == 0.1)

        let list = try jsonArray(client.request("\(gateway.url)/api/servers").body)
        #expect(list.count == 2)
        #expect(client.request("\(gateway.url)/api/servers/\(id)").status == 200)
        #expect(gateway.metric("poetry_servers_running") == 2)

        let deleted = client.request("DELETE", "\(gateway.url)/api/servers/\(id)")
        #expect(deleted.status == 204)
        #expect(client.request("\(gateway.url)/api/servers/\(id)").status == 404)
        #expect(client.request("DELETE", "\(gateway.url)/api/servers/\(id)").status == 404)
        // Its port is free again.
        let fd = try Socket.listen(on: SocketAddress(host: "127.0.0.1", port: UInt16(port)), nonBlocking: false)
        close(fd)
    }

    @Test(arguments: [
        (#"{"poem":"nosuchpoem"}"#, 404, "not_found"),
        (#"{"poem":"#, 400, "bad_request"),
        ("", 400, "bad_request"),
        (#"{"mode":"async"}"#, 400, "bad_request"),
        (#"{"poem":"science","port":"abc"}"#, 400, "bad_request"),
        (#"{"poem":"science","numBytes":1.5}"#, 400, "bad_request"),
        (#"{"poem":"science","port":80}"#, 400, "bad_request"),
        (#"{"poem":"science","port":70000}"#, 400, "bad_request"),
        (#"{"poem":"science","mode":"threaded"}"#, 400, "bad_request"),
        (#"{"poem":"science","numBytes":0}"#, 400, "bad_request"),
        (#"{"poem":"science","delay":-1}"#, 400, "bad_request"),
        (#"{"poem":"science","iface":"not-an-ip"}"#, 400, "bad_request"),
        (#"{"poem":"science","iface":"0.0.0.0"}"#, 403, "forbidden"),
        ("[1,2]", 400, "bad_request"),
        (#"{"poem":"science","num_bytes":50}"#, 400, "bad_request"),
    ])
    func badServerRequestsAreRefusedClearly(body: String, status: Int, code: String) throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let response = CurlClient().request("POST", "\(gateway.url)/api/servers", body: Array(body.utf8))
        #expect(response.status == status, "\(body) → \(response.text)")
        let error = try jsonObject(response.body)
        #expect(error["error"] as? String == code)
        #expect((error["message"] as? String)?.isEmpty == false)
    }

    /// Each refusal names what was wrong, in the words that fit: valid JSON of the wrong type is not "not valid
    /// JSON", a repeated field is refused as a repeated query parameter is, and a body that says it is not JSON is 415.
    @Test(arguments: [
        (#"{"poem":"science","numBytes":1.5}"#, "application/json", 400, "field 'numBytes' must be an integer"),
        (#"{"poem":"science","port":8080.5}"#, "application/json", 400, "field 'port' must be an integer"),
        (#"{"poem":"science","poem":"ecstasy"}"#, "application/json", 400, "field 'poem' is given more than once"),
        (#"{"poem":"science","poem":"ecstasy"}"#, "application/json", 400, "field 'poem' is given more than once"),
        (#"{"poem":"science"#, "application/json", 400, "not valid JSON"),
        (#"{"poem":"science"}"#, "application/x-www-form-urlencoded", 415, "Content-Type: application/json"),
        (#"{"poem":"science"}"#, "text/plain", 415, "not 'text/plain'"),
    ])
    func refusalsNameWhatWasWrong(body: String, contentType: String, status: Int, words: String) throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let response = CurlClient().request("POST", "\(gateway.url)/api/servers", headers: ["Content-Type: \(contentType)"], body: Array(body.utf8))
        #expect(response.status == status, "\(body) → \(response.text)")
        let message = try #require(try jsonObject(response.body)["message"] as? String)
        #expect(message.contains(words), "\(body) → \(message)")
        #expect(try jsonArray(CurlClient().request("\(gateway.url)/api/servers").body).isEmpty)
    }

    @Test func aJSONBodyWithParametersOrNoContentTypeIsTaken() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let body = Array(#"{"poem":"science","nested":{"a":1,"a":2}}"#.utf8)
        // Duplicates only count at the top: this fails on the unknown field, not on "a".
        let nested = CurlClient().request("POST", "\(gateway.url)/api/servers", headers: ["Content-Type: application/json"], body: body)
        #expect((try jsonObject(nested.body)["message"] as? String)?.contains("unknown field 'nested'") == true)
        let charset = CurlClient().request("POST", "\(gateway.url)/api/servers", headers: ["Content-Type: Application/JSON; charset=utf-8"],
                                           body: Array(#"{"poem":"science"}"#.utf8))
        #expect(charset.status == 201)
        let untyped = CurlClient().request("POST", "\(gateway.url)/api/servers", headers: ["Content-Type:"], body: Array(#"{"poem":"science"}"#.utf8))
        #expect(untyped.status == 201)
    }

    @Test(arguments: [
        ("targets=1234&timeout=0", "timeout must be a number of seconds above 0 and at most 3600, not '0'"),
        ("targets=,", "Target 1 is empty"),
        ("targets=1234,,1235", "Target 2 is empty"),
        ("targets=example.com:80", "HOST an IP address or localhost"),
    ])
    func fetchRefusalsNameWhatWasWrong(query: String, words: String) throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let response = CurlClient().request("\(gateway.url)/api/fetch?\(query)")
        #expect(response.status == 400)
        let message = try #require(try jsonObject(response.body)["message"] as? String)
        #expect(message.contains(words), "\(query) → \(message)")
    }

    /// A misspelt field must not start a server unlike the one asked for: it is refused, by name.
    @Test func anUnknownFieldIsRefusedByNameAndStartsNothing() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let response = CurlClient().request("POST", "\(gateway.url)/api/servers", body: Array(#"{"poem":"science","numbytes":50}"#.utf8))
        #expect(response.status == 400)
        let message = try #require(try jsonObject(response.body)["message"] as? String)
        #expect(message.contains("'numbytes'") && message.contains("numBytes"), "\(message)")
        #expect(try jsonArray(CurlClient().request("\(gateway.url)/api/servers").body).isEmpty)
    }

    @Test func aPortInUseIsAConflict() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let fd = try Socket.listen(on: SocketAddress(host: "127.0.0.1", port: 0), nonBlocking: false)
        defer { close(fd) }
        let port = SocketAddress.local(of: fd)!.port
        for mode in ["async", "blocking"] {
            let response = CurlClient().request("POST", "\(gateway.url)/api/servers", body: Array(#"{"poem":"science","mode":"\#(mode)","port":\#(port)}"#.utf8))
            #expect(response.status == 409, "\(mode): \(response.text)")
            #expect(response.text.contains("port_in_use"))
        }
    }

    @Test func theServerLimitIsAClear4xx() throws {
        let gateway = try TestGateway { $0.maxServers = 2 }
        defer { gateway.stop() }
        _ = try gateway.startServer("science")
        _ = try gateway.startServer("science")
        let third = CurlClient().request("POST", "\(gateway.url)/api/servers", body: Array(#"{"poem":"science"}"#.utf8))
        #expect(third.status == 429)
        #expect(third.text.contains("at most 2 servers"))
    }

    @Test func aBlockingServerIsDeletedMidPoemWithoutWaitingForItsNextSend() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        // 30 s between sends: a DELETE that waited for the server's sleep to end would see the next send first.
        let server = try gateway.startServer("ecstasy", mode: "blocking", numBytes: 10, delay: 30)
        let id = server["id"] as! Int
        let port = server["port"] as! Int
        // A client mid-poem, blocking the server's only thread: its first send is in.
        let client = try RawClient(port: UInt16(port))
        var first = [UInt8](repeating: 0, count: 10)
        // The server's thread sends at once, but under ThreadSanitizer with every suite running that can take
        // longer than the client's usual 5 s.
        Socket.setTimeouts(client.fd, seconds: 30)
        #expect(recv(client.fd, &first, first.count, Int32(MSG_WAITALL)) == 10)
        let deleted = CurlClient().request("DELETE", "\(gateway.url)/api/servers/\(id)", timeout: 20)
        #expect(deleted.status == 204)
        let rest = client.readUntilClosed(limit: 20)
        #expect(rest.closed, "the client mid-poem is let go")
        #expect(rest.text.isEmpty, "the server sent again before it stopped: \(rest.text)")
        let fd = try Socket.listen(on: SocketAddress(host: "127.0.0.1", port: UInt16(port)), nonBlocking: false)
        close(fd)
    }

    @Test func healthAndMetrics() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let health = CurlClient().request("\(gateway.url)/healthz")
        #expect(health.status == 200)
        #expect(health.text == "ok\n")
        _ = CurlClient().request("\(gateway.url)/nope/at/all")
        let metrics = CurlClient().request("\(gateway.url)/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        for name in ["poetry_http_requests_total", "poetry_http_open_connections", "poetry_fetches_active", "poetry_streams_active",
                     "poetry_servers_running", "poetry_bytes_received_total", "poetry_reactor_iterations_total",
                     "poetry_reactor_blocked_seconds_total", "poetry_reactor_busy_seconds_total"] {
            #expect(metrics.text.contains("# TYPE \(name) "), "\(name) missing")
        }
        #expect(metrics.text.contains(#"poetry_http_requests_total{route="/healthz",method="GET",status="200"} 1"#))
        #expect(metrics.text.contains(#"poetry_http_requests_total{route="static",method="GET",status="404"} 1"#))
    }

    /// The description says what is always there and every status the API can answer, and works wherever the
    /// gateway runs (a relative server URL, not a fixed port).
    @Test func theOpenAPIDescriptionNamesRequiredFieldsAndEveryStatus() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let spec = CurlClient().request("\(gateway.url)/openapi.yaml").text
        #expect(spec.contains("servers:\n  - url: /\n"))
        #expect(!spec.contains("http://127.0.0.1:8080\n"))
        for schema in ["Poem", "Server", "ReactorStats"] {
            let block = spec.components(separatedBy: "\n    \(schema):\n").dropFirst().first ?? ""
            #expect(block.hasPrefix("      type: object\n      required: ["), "\(schema) lists no required fields")
        }
        let fetchEvents = spec.split(separator: "\n").filter { $0.contains("event: { const:") }
        #expect(fetchEvents.count == 10)
        #expect(fetchEvents.allSatisfy { $0.contains("required: [event") })
        // Each operation's responses, up to the next operation.
        let operations = spec.components(separatedBy: "\n      responses:\n").dropFirst()
        #expect(operations.count == 9)
        for responses in operations {
            let codes = responses.split(separator: "\n").prefix { $0.hasPrefix("        ") }.compactMap { $0.firstMatch(of: /^        "(\d{3})":/)?.output.1 }
            for code in ["400", "405", "408", "413", "414", "431"] {
                #expect(codes.contains(Substring(code)), "an operation lacks \(code): \(codes)")
            }
        }
        #expect(spec.contains(#""415":"#) && spec.contains(#""406":"#) && spec.contains(#""429":"#) && spec.contains(#""401":"#))
    }

    @Test func theOpenAPIDescriptionCoversEveryRoute() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let spec = CurlClient().request("\(gateway.url)/openapi.yaml")
        #expect(spec.status == 200)
        #expect(spec.header("Content-Type") == "application/yaml")
        // Paths are the two-space-indented keys under `paths:`, methods the four-space-indented keys under them.
        var described: Set<String> = []
        var path: String?
        var inPaths = false
        for line in spec.text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" { inPaths = true; continue }
            if inPaths && !line.hasPrefix(" ") && !line.isEmpty { inPaths = false }
            guard inPaths else { continue }
            if line.hasPrefix("  /") && line.hasSuffix(":") && !line.hasPrefix("   ") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), let colon = line.firstIndex(of: ":") {
                let key = line[line.index(line.startIndex, offsetBy: 4)..<colon]
                if ["get", "post", "delete", "put", "patch"].contains(String(key)) { described.insert("\(key.uppercased()) \(path)") }
            }
        }
        let routes = gateway.routePatterns.map { "\($0.method) \($0.pattern)" }
        #expect(!routes.isEmpty)
        for route in routes {
            #expect(described.contains(route), "\(route) is not in public/openapi.yaml")
        }
        #expect(described.count == routes.count, "openapi.yaml describes routes that do not exist: \(described.subtracting(routes))")
    }

    @Test func aHostileOriginOrHostIsRefused() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let body = Array(#"{"poem":"science"}"#.utf8)
        let foreign = CurlClient().request("POST", "\(gateway.url)/api/servers", headers: ["Origin: http://evil.example"], body: body)
        #expect(foreign.status == 403)
        #expect(foreign.text.contains("origin"))
        let rebinding = CurlClient().request("\(gateway.url)/api/poems", headers: ["Host: evil.example:\(gateway.port)"])
        #expect(rebinding.status == 403)
        let own = CurlClient().request("POST", "\(gateway.url)/api/servers", headers: ["Origin: http://localhost:\(gateway.port)"], body: body)
        #expect(own.status == 201)
        let byName = CurlClient().request("\(gateway.url)/api/poems", headers: ["Host: localhost:\(gateway.port)"])
        #expect(byName.status == 200)
    }

    @Test func aTokenIsRequiredForChangesWhenSet() throws {
        let gateway = try TestGateway { $0.token = "s3cret" }
        defer { gateway.stop() }
        let body = Array(#"{"poem":"science"}"#.utf8)
        #expect(CurlClient().request("POST", "\(gateway.url)/api/servers", body: body).status == 401)
        #expect(CurlClient().request("POST", "\(gateway.url)/api/servers", headers: ["Authorization: Bearer wrong"], body: body).status == 401)
        #expect(CurlClient().request("POST", "\(gateway.url)/api/servers", headers: ["Authorization: Bearer s3cret"], body: body).status == 201)
        #expect(CurlClient().request("\(gateway.url)/api/servers").status == 200, "on loopback, reading needs no token")
    }

    @Test func listeningOutsideLoopbackWithoutATokenIsRefused() {
        // Refused for the missing token, before any socket exists (not, say, because the port was taken).
        let error = #expect(throws: GatewayStartError.self) {
            _ = try TestGateway { $0.host = "0.0.0.0" }
        }
        #expect(error?.message.contains("without --token") == true, "\(String(describing: error))")
    }

    @Test func unknownMethodsAreNotImplemented() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        #expect(CurlClient().request("BREW", "\(gateway.url)/").status == 501)
        #expect(CurlClient().request("PUT", "\(gateway.url)/api/poems").status == 405)
    }
}
