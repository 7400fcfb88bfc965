#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Gateway
import Poetry
import Reactor
import Synchronization
import Testing

/// The gateway end to end on every reactor backend, as Twisted's `ReactorBuilder` runs one behaviour suite per
/// reactor: the other gateway suites run on the default (epoll) only.
@Suite("The gateway on every backend")
struct GatewayBackendTests {
    /// Servers started through the API, fetched async and blocking, in NDJSON: every poem whole, in every mode.
    @Test(arguments: BackendKind.allCases)
    func serversAndFetchesInEveryMode(backend: BackendKind) throws {
        let gateway = try TestGateway { $0.backend = backend }
        defer { gateway.stop() }
        let reactorInfo = try jsonObject(CurlClient().request("\(gateway.url)/api/reactor").body)
        #expect(reactorInfo["backend"] as? String == backend.rawValue)
        let ports = try [("ecstasy", 30, "async"), ("science", 10, "blocking")].map { poem, bytes, mode in
            try gateway.startServer(poem, mode: mode, numBytes: bytes, delay: 0.002)["port"] as! Int
        }
        let targets = ports.map(String.init).joined(separator: ",")
        for mode in ["async", "blocking"] {
            let response = CurlClient().request("\(gateway.url)/api/fetch?mode=\(mode)&targets=\(targets)&format=ndjson")
            #expect(response.status == 200)
            #expect(response.error == nil, "\(response.error ?? "")")
            let events = try ndjson(response.text)
            let done = events.filter { $0["event"] as? String == "done" }
            #expect(done.compactMap { $0["bytes"] as? Int }.sorted() == [653, 3003], "\(mode)")
            #expect(events.last?["event"] as? String == "summary")
            #expect(events.last?["poems"] as? Int == 2)
        }
    }

    /// The orderly stop (what SIGTERM/SIGHUP trigger) ends a live stream with its `shutdown` event and final chunk.
    @Test(arguments: BackendKind.allCases)
    func anOrderlyStopEndsALiveStream(backend: BackendKind) throws {
        let gateway = try TestGateway { $0.backend = backend }
        let port = try gateway.startServer("ecstasy", mode: "async", numBytes: 10, delay: 0.1)["port"] as! Int
        let stream = BackgroundRequest("\(gateway.url)/api/fetch?targets=\(port)&format=ndjson")
        #expect(gateway.waitUntil(metric: "poetry_streams_active", is: 1), "the stream never opened")
        gateway.shutdown()
        let result = try #require(stream.wait())
        #expect(result.error == nil, "the stream did not end with its terminating chunk: \(result.error ?? "")")
        #expect(try ndjson(result.text).last?["event"] as? String == "shutdown")
    }
}
