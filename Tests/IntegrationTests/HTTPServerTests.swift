#if canImport(Glibc)
import Glibc
#endif
import HTTP1
import HTTPServer
import Reactor
import Testing

/// Tests that exercise the transport take every backend (as Twisted's ReactorBuilder runs a suite per reactor);
/// those about parsing and routing run on the default one. One at a time: run together on four backends they
/// hold hundreds of descriptors at once, which pushes the select cases of other suites past FD_SETSIZE.
@Suite("HTTP server over libcurl and raw sockets", .serialized)
struct HTTPServerTests {
    @Test(arguments: BackendKind.allCases)
    func keepAliveReusesOneConnectionForManyRequests(backend: BackendKind) throws {
        let server = try TestHTTPServer(backend: backend)
        defer { server.stop() }
        let client = CurlClient()
        var opened = 0
        for index in 0..<20 {
            let response = client.request("\(server.url)/items/\(index)?q=a%20b")
            #expect(response.status == 200)
            #expect(response.text == "{\"id\":\"\(index)\",\"q\":\"a b\"}")
            opened += response.newConnections
        }
        #expect(opened == 1)
        #expect(server.stats.connectionsAccepted == 1)
    }

    @Test(arguments: BackendKind.allCases)
    func aChunkedStreamArrivesAsItIsWritten(backend: BackendKind) throws {
        let server = try TestHTTPServer(backend: backend)
        defer { server.stop() }
        let response = CurlClient().request("\(server.url)/stream")
        #expect(response.status == 200)
        #expect(response.header("Transfer-Encoding") == "chunked")
        #expect(response.text == (0..<5).map { "chunk \($0)\n" }.joined())
        // Five writes 50 ms apart: they arrive spread out, not all at the end.
        #expect(response.arrivals.count >= 4)
        let spread = (response.arrivals.last ?? 0) - (response.arrivals.first ?? 0)
        #expect(spread > 0.15, "chunks arrived within \(spread)s of each other")
    }

    @Test func headGetsHeadersWithoutABody() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = CurlClient()
        let get = client.request("\(server.url)/hello")
        let head = client.request("HEAD", "\(server.url)/hello")
        #expect(head.status == 200)
        #expect(head.body.isEmpty)
        #expect(head.header("Content-Length") == String(get.body.count))
        // The connection is still good after a HEAD: no stray body bytes desynchronised it.
        #expect(client.request("\(server.url)/hello").text == "hello\n")
    }

    @Test func notFoundAndMethodNotAllowedSayWhy() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = CurlClient()
        let missing = client.request("\(server.url)/items")
        #expect(missing.status == 404)
        let wrongMethod = client.request("DELETE", "\(server.url)/hello")
        #expect(wrongMethod.status == 405)
        #expect(wrongMethod.header("Allow") == "GET, HEAD")
        #expect(wrongMethod.text.contains("\"error\":\"method_not_allowed\""))
        #expect(wrongMethod.header("Content-Type") == "application/json")
    }

    @Test func staticFilesHaveETagsAnd304() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let client = CurlClient()
        let page = client.request("\(server.url)/")
        #expect(page.status == 200)
        #expect(page.header("Content-Type") == "text/html; charset=utf-8")
        let etag = try #require(page.header("ETag"))
        #expect(page.header("Last-Modified") != nil)
        let again = client.request("\(server.url)/index.html", headers: ["If-None-Match: \(etag)"])
        #expect(again.status == 304)
        #expect(again.body.isEmpty)
        let changed = client.request("\(server.url)/index.html", headers: ["If-None-Match: \"other\""])
        #expect(changed.status == 200)
    }

    @Test(arguments: ["/..%2f..%2fetc%2fpasswd", "/%2e%2e/%2e%2e/etc/passwd", "/a%00b", "/..%5c..%5cetc", "/outside-link/passwd"])
    func nothingOutsideThePublicDirectoryCanBeReached(path: String) throws {
        let root = "/tmp/poetry-static-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        mkdir(root, 0o755)
        symlink("/etc", root + "/outside-link")
        defer { unlink(root + "/outside-link"); rmdir(root) }
        let server = try TestHTTPServer(publicDir: root)
        defer { server.stop() }
        let raw = try RawClient(port: server.port)
        raw.send("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        let reply = raw.readUntilClosed().text
        #expect(reply.statusCodes.first.map { $0 == 404 || $0 == 400 } == true, "\(path): \(reply.prefix(80))")
        #expect(!reply.contains("root:"))
    }

    @Test func oversizeRequestsGetTheRightStatus() throws {
        var config = HTTPServerConfig()
        config.limits.maxBodyBytes = 1000
        config.limits.maxHeaderBytes = 4000
        config.limits.maxRequestLineBytes = 2000
        let server = try TestHTTPServer(config: config)
        defer { server.stop() }
        let body = CurlClient().request("POST", "\(server.url)/echo", body: [UInt8](repeating: 65, count: 5000))
        #expect(body.status == 413)
        let headers = CurlClient().request("\(server.url)/hello", headers: ["X-Big: " + String(repeating: "v", count: 5000)])
        #expect(headers.status == 431)
        let url = CurlClient().request("\(server.url)/hello?" + String(repeating: "q", count: 3000))
        #expect(url.status == 414)
        let fine = CurlClient().request("POST", "\(server.url)/echo", body: Array("just right".utf8))
        #expect(fine.status == 200)
        #expect(fine.text == "just right")
    }

    @Test(arguments: BackendKind.allCases)
    func expectContinueGetsTheBodyThrough(backend: BackendKind) throws {
        let server = try TestHTTPServer(backend: backend)
        defer { server.stop() }
        let payload = [UInt8](repeating: 66, count: 200_000)
        let response = CurlClient().request("POST", "\(server.url)/echo", headers: ["Expect: 100-continue"], body: payload)
        #expect(response.status == 200)
        #expect(response.body == payload)
    }

    @Test(arguments: BackendKind.allCases)
    func fiftyConcurrentTransfersThroughTheMultiInterface(backend: BackendKind) throws {
        let server = try TestHTTPServer(backend: backend)
        defer { server.stop() }
        let urls = (0..<50).map { "\(server.url)/items/\($0)" }
        let responses = CurlClient.concurrent(urls)
        #expect(responses.count == 50)
        for (index, response) in responses.enumerated() {
            #expect(response.status == 200)
            #expect(response.text.contains("\"id\":\"\(index)\""))
        }
    }

    @Test(arguments: BackendKind.allCases)
    func pipelinedRequestsAreAnsweredInOrder(backend: BackendKind) throws {
        let server = try TestHTTPServer(backend: backend)
        defer { server.stop() }
        let raw = try RawClient(port: server.port)
        raw.send("GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /items/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let reply = raw.readUntilClosed()
        #expect(reply.closed)
        let first = try #require(reply.text.range(of: "\"id\":\"1\""))
        let stream = try #require(reply.text.range(of: "chunk 4"))
        let third = try #require(reply.text.range(of: "\"id\":\"3\""))
        #expect(first.lowerBound < stream.lowerBound)
        #expect(stream.lowerBound < third.lowerBound)
    }

    @Test func aRequestOrWriterKeptByTheHandlerIsNeverRecycledForTheNextRequest() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let raw = try RawClient(port: server.port)
        raw.send("GET /kept?q=1 HTTP/1.1\r\nHost: x\r\nX-Mark: first\r\n\r\n")
        #expect(raw.readResponseTexts(1).contains("kept 1"))
        // A longer head on the same connection: refilling the first head's buffer would overwrite what it reads.
        raw.send("GET /stale?q=2 HTTP/1.1\r\nHost: x\r\nX-Mark: second, and longer than the first\r\nConnection: close\r\n\r\n")
        let reply = raw.readUntilClosed()
        #expect(reply.closed)
        #expect(!reply.text.contains("HTTP/1.1 409"), "\(reply.text)")
        #expect(reply.text.hasPrefix("HTTP/1.1 200 OK"), "\(reply.text)")
        #expect(reply.text.hasSuffix("{\"mark\":\"first\",\"path\":\"/kept\",\"query\":\"1\"}"), "\(reply.text)")
    }

    @Test(arguments: [
        ("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
        ("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
        ("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: rot13\r\n\r\n", 501),
        ("GET /hello HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        ("GET /hello HTTP/1.1\r\nHost: x\r\nX: a\r\n  folded\r\n\r\n", 400),
        ("GET /hello HTTP/1.1\nHost: x\n\n", 400),
        ("GET /hello HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400),
        ("GET /he\u{1}llo HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET /hello HTTP/1.1\r\nHost: x\r\nX: a\u{7f}b\r\n\r\n", 400),
        ("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n", 400),
        ("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("GET /hello HTTP/1.1\r\n\r\n", 400),
        ("GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        ("GET /hello HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n", 417),
    ])
    func smugglingShapesAndMalformedRequestsAreRefusedAndClosed(request: String, status: Int) throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let raw = try RawClient(port: server.port)
        raw.send(request)
        let reply = raw.readUntilClosed()
        #expect(reply.text.statusCodes == [status], "\(request.debugDescription) → \(reply.text.prefix(120))")
        #expect(reply.closed, "the connection closes after a refused request")
        #expect(reply.text.contains("\"error\":"))
    }

    /// A head trickled a byte at a time is cut off at its deadline: the 408 comes before the head is complete. (The
    /// deadline's exact timing is tested on a manual clock: ManualClockServerTests, ConnectionStateMachineTests.)
    @Test(arguments: BackendKind.allCases)
    func aClientTricklingItsHeadIsClosedAtTheHeaderTimeout(backend: BackendKind) throws {
        var config = HTTPServerConfig()
        config.headerTimeout = 0.3
        let server = try TestHTTPServer(config: config, backend: backend)
        defer { server.stop() }
        let raw = try RawClient(port: server.port)
        let head = Array("GET /hello HTTP/1.1\r\nHost: x\r\n".utf8) + Array(repeating: UInt8(ascii: "X"), count: 4000)
        var sent = 0
        var reply = ""
        while sent < head.count && !reply.contains("408") {
            raw.send(bytes: [head[sent]])
            sent += 1
            reply += raw.readAvailable(waitingUpTo: 0.02)
        }
        if !reply.contains("408") { reply += raw.readUntilClosed(limit: 20).text }
        #expect(reply.statusCodes == [408])
        #expect(sent < head.count, "the whole head went out a byte at a time before the 408")
    }

    /// A connection that has sent nothing lives no longer than a slow head would: it closes (without a word) at the
    /// header timeout, not the far longer idle timeout; once a byte comes, the header timeout counts from it.
    @Test(arguments: BackendKind.allCases)
    func aSilentConnectionClosesAtTheHeaderTimeout(backend: BackendKind) throws {
        var config = HTTPServerConfig()
        config.headerTimeout = 0.1
        config.idleTimeout = 30
        let server = try TestHTTPServer(config: config, backend: backend)
        defer { server.stop() }
        let raw = try RawClient(port: server.port)
        let start = MonotonicClock.now()
        let silent = raw.readUntilClosed(limit: 20)
        let elapsed = MonotonicClock.seconds(fromNanoseconds: MonotonicClock.now() - start)
        #expect(silent.closed && silent.text.isEmpty, "\(silent)")
        #expect(elapsed < config.idleTimeout / 3, "closed after \(elapsed)s")
        let trickling = try RawClient(port: server.port)
        trickling.send("GET /hello HTTP/1.1\r\n")
        #expect(trickling.readUntilClosed(limit: 20).text.statusCodes == [408])
    }

    /// One client pipelines thousands of requests for a 10 KB file and reads nothing: the server stops taking its
    /// requests once their answers are queued (it used to answer them all into memory, 1.6 GB in ten seconds) while
    /// another client is served; when the first client reads, every answer comes, in order.
    @Test(arguments: BackendKind.allCases)
    func aPipeliningClientThatDoesNotReadIsPausedAndLosesNothing(backend: BackendKind) throws {
        let server = try TestHTTPServer(backend: backend)
        defer { server.stop() }
        let count = 3_000
        let floodClient = try RawClient(port: server.port, receiveBuffer: 4096)
        floodClient.send(String(repeating: "GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n", count: count))
        let other = try RawClient(port: server.port)
        var otherRequests = 0
        func served(_ rounds: Int) -> Int {
            for _ in 0..<rounds {
                other.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
                _ = other.readResponses(1)
                otherRequests += 1
            }
            return server.stats.requests
        }
        // The flood stalls within a few of the other client's round trips (on io_uring a turn hands at most the
        // high watermark to the kernel, so it takes more turns to fill the socket than epoll's sends do).
        var before = served(5)
        var after = served(5)
        for _ in 0..<20 where after - before != 5 {
            before = after
            after = served(5)
        }
        // Between the last two counts only the other client's five requests were taken: the flood is stalled.
        #expect(after - before == 5)
        let flood = after - otherRequests
        #expect(flood < count / 2, "took \(flood) of the flood's requests while it read nothing")
        let answers = floodClient.readResponses(count)
        #expect(answers == count)
    }

    /// Twenty clients that ask for answers and stop reading hold every slot of a 20-connection server, until the
    /// send timeout resets them (their answers stuck in the kernel, or in the process); a newcomer is then served.
    @Test(arguments: BackendKind.allCases)
    func clientsThatStopReadingAreResetAtTheSendTimeoutAndFreeTheirSlots(backend: BackendKind) throws {
        var config = HTTPServerConfig()
        config.maxConnections = 20
        config.sendTimeout = 0.5
        let server = try TestHTTPServer(config: config, backend: backend)
        defer { server.stop() }
        let stalled = try (0..<20).map { _ in try RawClient(port: server.port, receiveBuffer: 4096) }
        for client in stalled { client.send(String(repeating: "GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n", count: 200)) }
        let newcomer = try RawClient(port: server.port)
        newcomer.send("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(newcomer.readUntilClosed(limit: 30).text.statusCodes == [200])
        // Each stalled client is reset at the send timeout, or closed sooner as the oldest idle connection when
        // the server nears its cap: either way none is held.
        let deadline = MonotonicClock.now() + MonotonicClock.nanoseconds(fromSeconds: 30)
        while server.stats.openConnections > 0 && MonotonicClock.now() < deadline { usleep(10_000) }
        let stats = server.stats
        #expect(stats.openConnections == 0)
        #expect(stats.sendTimeouts >= 1 && stats.sendTimeouts + stats.idleConnectionsEvicted == 20, "\(stats)")
    }

    @Test(arguments: BackendKind.allCases)
    func idleKeepAliveConnectionsAreClosed(backend: BackendKind) throws {
        var config = HTTPServerConfig()
        config.idleTimeout = 0.2
        let server = try TestHTTPServer(config: config, backend: backend)
        defer { server.stop() }
        let raw = try RawClient(port: server.port)
        raw.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        let reply = raw.readUntilClosed(limit: 2)
        #expect(reply.text.statusCodes == [200])
        #expect(reply.closed)
    }

    @Test func http10GetsAClosedConnectionUnlessItAsksForKeepAlive() throws {
        let server = try TestHTTPServer()
        defer { server.stop() }
        let plain = try RawClient(port: server.port)
        plain.send("GET /hello HTTP/1.0\r\n\r\n")
        let reply = plain.readUntilClosed()
        #expect(reply.closed)
        #expect(reply.text.contains("Connection: close"))
        let kept = try RawClient(port: server.port)
        kept.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /hello HTTP/1.0\r\n\r\n")
        let both = kept.readUntilClosed()
        #expect(both.text.statusCodes == [200, 200])
        #expect(both.text.contains("Connection: keep-alive"))
    }

    @Test(arguments: BackendKind.allCases)
    func aConnectionCapPausesAccepting(backend: BackendKind) throws {
        var config = HTTPServerConfig()
        config.maxConnections = 2
        config.idleEvictionShare = 1  // the cap alone: no idle connection makes room
        let server = try TestHTTPServer(config: config, backend: backend)
        defer { server.stop() }
        let first = try RawClient(port: server.port)
        let second = try RawClient(port: server.port)
        first.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        second.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(first.readResponseTexts(1).statusCodes == [200])
        #expect(second.readResponseTexts(1).statusCodes == [200])
        // The third waits in the backlog: connected by the kernel, but not accepted while the cap holds. A round
        // trip on the first connection after it connected shows the loop went on without taking it.
        let third = try RawClient(port: server.port)
        third.send("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        first.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(first.readResponseTexts(1).statusCodes == [200])
        #expect(server.stats.connectionsAccepted == 2)
        first.send("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        _ = first.readUntilClosed()
        first.hangUp()
        #expect(third.readUntilClosed().text.statusCodes == [200])
        #expect(server.stats.connectionsAccepted == 3)
    }

    /// The server's table of connections forgets each one as it closes, whatever the order (it moves its last entry
    /// into the gap), so the count and the cap stay true.
    @Test(arguments: BackendKind.allCases)
    func connectionsClosingInAnyOrderLeaveTheTableExact(backend: BackendKind) throws {
        var config = HTTPServerConfig()
        config.maxConnections = 6
        config.idleEvictionShare = 1  // the table alone: no idle connection makes room
        let server = try TestHTTPServer(config: config, backend: backend)
        defer { server.stop() }
        var clients = try (0..<6).map { _ in try RawClient(port: server.port) }
        for client in clients { client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n") }
        for client in clients { #expect(client.readResponseTexts(1).statusCodes == [200]) }
        #expect(server.stats.openConnections == 6)
        // First, last, a middle one, then the rest: each removal moves a different entry.
        for (closed, index) in [0, 4, 1].enumerated() {
            clients.remove(at: index).hangUp()
            let expected = 5 - closed
            let deadline = MonotonicClock.now() + MonotonicClock.nanoseconds(fromSeconds: 5)
            while server.stats.openConnections != expected && MonotonicClock.now() < deadline { usleep(2000) }
            #expect(server.stats.openConnections == expected)
        }
        // The survivors are still served, and the freed slots take new connections up to the cap.
        for client in clients {
            client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(client.readResponseTexts(1).statusCodes == [200])
        }
        let newcomers = try (0..<3).map { _ in try RawClient(port: server.port) }
        for client in newcomers {
            client.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(client.readResponseTexts(1).statusCodes == [200])
        }
        clients.forEach { $0.hangUp() }
        newcomers.forEach { $0.hangUp() }
        let deadline = MonotonicClock.now() + MonotonicClock.nanoseconds(fromSeconds: 5)
        while server.stats.openConnections != 0 && MonotonicClock.now() < deadline { usleep(2000) }
        #expect(server.stats.openConnections == 0)
    }
}
