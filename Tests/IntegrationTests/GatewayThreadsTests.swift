#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import Gateway
import Poetry
import Reactor
import Testing

/// `--threads`: several reactor threads on one port. Each connection lands on whichever thread the kernel picks;
/// the API must answer the same on every one of them, and the limits and counters must be the gateway's, not a
/// thread's.
@Suite("The gateway on several reactor threads")
struct GatewayThreadsTests {
    /// Fresh connections spread over the threads, and every one of them sees the servers started on another.
    @Test func connectionsSpreadAndEveryThreadSeesTheServers() throws {
        let gateway = try TestGateway { $0.threads = 2 }
        defer { gateway.stop() }
        let id = try #require(try gateway.startServer("science")["id"] as? Int)
        for _ in 0..<24 {
            let response = CurlClient().request("\(gateway.url)/api/servers/\(id)")
            #expect(response.status == 200, "\(response.text)")
        }
        let accepted = gateway.onEachThread { $0.http.stats.connectionsAccepted }
        #expect(accepted.count == 2)
        // 25 connections, each thread's share left to the kernel's hash: all on one has odds of 2 in 2^25.
        #expect(accepted.allSatisfy { $0 > 0 }, "connections per thread: \(accepted)")
        #expect(accepted.reduce(0, +) == 25)
        let deleted = CurlClient().request("DELETE", "\(gateway.url)/api/servers/\(id)")
        #expect(deleted.status == 204)
        for _ in 0..<8 {
            #expect(CurlClient().request("\(gateway.url)/api/servers/\(id)").status == 404)
        }
    }

    /// `--max-connections` is shared out so that the threads together hold exactly the cap.
    @Test func theConnectionCapIsSharedOutExactly() throws {
        let gateway = try TestGateway {
            $0.threads = 3
            $0.http.maxConnections = 10
        }
        defer { gateway.stop() }
        #expect(gateway.onEachThread { $0.http.config.maxConnections } == [4, 3, 3])
        #expect(throws: GatewayStartError.self) { try Gateway(config: { var c = GatewayConfig(); c.port = 0; c.threads = 4; c.http.maxConnections = 3; return c }()) }
    }

    /// The stream limit is the gateway's: with one stream open, every other connection, on any thread, is refused
    /// until it ends; and /metrics adds up every thread's requests.
    @Test(arguments: [1, 2, 3])
    func limitsAndCountersAreTheGatewaysNotAThreads(threads: Int) throws {
        let gateway = try TestGateway {
            $0.threads = threads
            $0.maxStreams = 1
        }
        defer { gateway.stop() }
        let port = try #require(try gateway.startServer("ecstasy", numBytes: 200, delay: 0.05)["port"] as? Int)
        let stream = BackgroundRequest("\(gateway.url)/api/fetch?targets=\(port)&format=ndjson")
        #expect(gateway.waitUntil(metric: "poetry_streams_active", is: 1), "the stream never opened")
        for _ in 0..<12 {
            let refused = CurlClient().request("\(gateway.url)/api/fetch?targets=\(port)")
            #expect(refused.status == 429, "\(refused.text)")
        }
        #expect(gateway.onEachThread { $0.activeStreams }.reduce(0, +) == 1)
        let ended = try #require(stream.wait())
        #expect(ended.status == 200)
        #expect(gateway.waitUntil(metric: "poetry_streams_active", is: 0))
        let second = CurlClient().request("\(gateway.url)/api/fetch?targets=\(port)&format=ndjson")
        #expect(second.status == 200)
        #expect(gateway.metric("poetry_fetches_total") == 2)
        #expect(gateway.metric("poetry_reactor_threads") == Double(threads))
        let refusals = TestGatewayMetrics.value("poetry_http_requests_total{route=\"/api/fetch\",method=\"GET\",status=\"429\"}", url: gateway.url)
        #expect(refusals == 12)
        let reactorInfo = try jsonObject(CurlClient().request("\(gateway.url)/api/reactor").body)
        #expect(reactorInfo["threads"] as? Int == threads)
    }

    /// Fetch ids name a fetch in its events: unique across threads.
    @Test func fetchIDsAreUniqueAcrossThreads() throws {
        let gateway = try TestGateway { $0.threads = 2 }
        defer { gateway.stop() }
        let port = try #require(try gateway.startServer("science", numBytes: 4000, delay: 0.001)["port"] as? Int)
        var ids: [String] = []
        for _ in 0..<12 {
            let response = CurlClient().request("\(gateway.url)/api/fetch?targets=\(port)&format=ndjson")
            ids.append(response.header("X-Fetch-Id") ?? "none")
        }
        #expect(Set(ids).count == 12, "\(ids)")
    }

    /// However the first thread's loop ends (here a bare stop, not the signal's shutdown), every other thread
    /// still ends its own streams with their final event before `run` returns: none is cut off mid-stream.
    @Test func stoppingTheFirstThreadEndsEveryThreadsStreams() throws {
        let gateway = try TestGateway { $0.threads = 2 }
        let port = try #require(try gateway.startServer("ecstasy", numBytes: 10, delay: 0.1)["port"] as? Int)
        var streams: [BackgroundRequest] = []
        // Streams until each thread has one (fresh connections land where the kernel's hash puts them).
        while streams.count < 16 {
            streams.append(BackgroundRequest("\(gateway.url)/api/fetch?targets=\(port)&format=ndjson"))
            #expect(gateway.waitUntil(metric: "poetry_streams_active", is: Double(streams.count)))
            if gateway.onEachThread({ $0.activeStreams }).allSatisfy({ $0 > 0 }) { break }
        }
        #expect(gateway.onEachThread { $0.activeStreams }.allSatisfy { $0 > 0 })
        gateway.stop()
        for stream in streams {
            let result = try #require(stream.wait(limit: 10))
            #expect(result.error == nil, "a stream did not end with its terminating chunk: \(result.error ?? "")")
            #expect(try ndjson(result.text).last?["event"] as? String == "shutdown")
        }
    }

    /// Another thread's POST /api/servers can reach the registry after the shutdown stopped every server: it is
    /// refused, not started with nothing left to stop it.
    @Test func noServerStartsOnceTheServersWereStopped() throws {
        let registry = ServerRegistry(reactor: try Reactor(backend: .epoll), maxServers: 4)
        var stopped = false
        registry.stopAll { stopped = true }
        #expect(stopped)
        let config = PoetryServerConfig(poem: Array("a poem\n".utf8), address: try SocketAddress(host: "127.0.0.1", port: 0))
        #expect(throws: GatewayError.self) { try registry.start(poem: "science", mode: .async, config: config) }
        #expect(registry.count == 0)
    }

    /// A gateway stopped after work that crossed threads (scrapes, a server started from any thread, a stream)
    /// frees every thread's reactor, and with it their descriptors: nothing left queued on a stopped loop keeps
    /// it alive.
    @Test func aStoppedGatewayLeavesNoReactorBehind() throws {
        let reactors = WeakReactors()
        try {
            let gateway = try TestGateway { $0.threads = 3 }
            let port = try #require(try gateway.startServer("science", numBytes: 100, delay: 0.05)["port"] as? Int)
            for _ in 0..<6 { #expect(gateway.metric("poetry_servers_running") == 1) }
            let stream = BackgroundRequest("\(gateway.url)/api/fetch?targets=\(port)&format=ndjson")
            #expect(gateway.waitUntil(metric: "poetry_streams_active", is: 1))
            reactors.watch(gateway.onEachThread { $0.reactor })
            gateway.shutdown()
            #expect(gateway.isStopped)
            #expect(stream.wait() != nil)
        }()
        #expect(reactors.count == 3)
        // The gateway's own thread lets go of it a moment after its loop reports stopped: wait for that, not more
        // (a cycle keeps them alive for good).
        for _ in 0..<500 where reactors.alive > 0 { usleep(10_000) }
        #expect(reactors.alive == 0, "reactors still alive after the gateway was dropped: \(reactors.alive)")
    }
}

/// Weak references to reactors, to see that they were freed. @unchecked Sendable: used by one test thread.
private final class WeakReactors: @unchecked Sendable {
    private struct Weak { weak var reactor: Reactor? }
    private var references: [Weak] = []
    func watch(_ reactors: [Reactor]) { references += reactors.map { Weak(reactor: $0) } }
    var count: Int { references.count }
    var alive: Int { references.filter { $0.reactor != nil }.count }
}
