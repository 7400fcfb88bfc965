#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Reactor
import TestSupport
import Synchronization
import Testing

/// The seed's three servers through the API, with small delays; returns the targets parameter.
private func seedServers(_ gateway: TestGateway, delay: Double = 0.005) throws -> String {
    let ports = try [("ecstasy", 30), ("fascination", 10), ("science", 10)].map { poem, bytes in
        try gateway.startServer(poem, mode: "async", numBytes: bytes, delay: delay)["port"] as! Int
    }
    return ports.map(String.init).joined(separator: ",")
}

@Suite("Gateway fetch streams")
struct GatewayFetchTests {
    /// What all fetches together keep of poem text is bounded (`--max-kept-poem-bytes`): past it a task's text is
    /// not kept and its `done` comes without it (bytes still counted); once those fetches end the budget is back.
    @Test func poemTextKeptByAllFetchesIsBounded() throws {
        let gateway = try TestGateway { $0.maxKeptPoemBytes = 1_000 }
        defer { gateway.stop() }
        let port = try #require(try gateway.startServer("science", numBytes: 700, delay: 0.001)["port"] as? Int)
        for round in 0..<2 {
            let events = try ndjson(CurlClient().request("\(gateway.url)/api/fetch?targets=\(port),\(port)&format=ndjson").text)
            let done = events.filter { $0["event"] as? String == "done" }
            #expect(done.count == 2, "round \(round)")
            #expect(done.allSatisfy { $0["bytes"] as? Int == 653 }, "round \(round): \(done)")
            // 1,306 bytes of text wanted, 1,000 allowed: one task keeps its poem, the other does not.
            #expect(done.filter { $0["poem"] != nil }.count == 1, "round \(round): \(done.map { $0.keys.sorted() })")
            #expect(events.last?["poems"] as? Int == 2)
        }
    }

    @Test func textStreamsAreExactlyTheCLILines() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let targets = try seedServers(gateway)
        let firstPort = targets.split(separator: ",")[0]

        let blocking = CurlClient().request("\(gateway.url)/api/fetch?mode=blocking&targets=\(targets)")
        #expect(blocking.status == 200)
        #expect(blocking.header("Content-Type") == "text/plain; charset=utf-8")
        #expect(blocking.header("Transfer-Encoding") == "chunked")
        let lines = blocking.text.split(separator: "\n").map(String.init)
        #expect(lines.count == 7)
        #expect(lines[0] == "Task 1: get poetry from: 127.0.0.1:\(firstPort)")
        #expect(lines[1].wholeMatch(of: /Task 1: got 3003 bytes of poetry from 127\.0\.0\.1:\d+ in 0:00:\d\d\.\d{6}/) != nil, "\(lines[1])")
        #expect(lines[3].hasPrefix("Task 2: got 615 bytes of poetry from"))
        #expect(lines[6].wholeMatch(of: /Got 3 poems in 0:00:\d\d\.\d{6}/) != nil)

        let async = CurlClient().request("\(gateway.url)/api/fetch?targets=\(targets)")
        let asyncLines = async.text.split(separator: "\n").map(String.init)
        #expect(asyncLines.contains("Task 1: got 30 bytes of poetry from 127.0.0.1:\(firstPort)"))
        #expect(asyncLines.contains("Task 3 finished"))
        #expect(Array(asyncLines.suffix(4).prefix(3)) == ["Task 1: 3003 bytes of poetry", "Task 2: 615 bytes of poetry", "Task 3: 653 bytes of poetry"])
    }

    @Test func ndjsonCarriesEveryEventInOrder() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let targets = try seedServers(gateway)
        let response = CurlClient().request("\(gateway.url)/api/fetch?mode=async&targets=\(targets)", headers: ["Accept: application/x-ndjson"])
        #expect(response.header("Content-Type") == "application/x-ndjson")
        let events = try ndjson(response.text)
        #expect(events.first?["event"] as? String == "start")
        let tasks = events.first?["tasks"] as? [[String: Any]]
        #expect(tasks?.count == 3)
        #expect(tasks?.first?["address"] as? String == "127.0.0.1:\(targets.split(separator: ",")[0])")
        #expect(events.last?["event"] as? String == "summary")
        #expect(events.last?["poems"] as? Int == 3)
        #expect(events.last?["failed"] as? Int == 0)
        #expect((events.last?["elapsed"] as? Double ?? 0) > 0)
        let done = events.filter { $0["event"] as? String == "done" }
        #expect(done.count == 3)
        let ecstasy = try String(contentsOfFile: "\(projectRoot)/poetry/ecstasy.txt", encoding: .utf8)
        #expect(done.contains { $0["task"] as? Int == 1 && $0["poem"] as? String == ecstasy && $0["bytes"] as? Int == 3003 })
        let data = events.filter { $0["event"] as? String == "data" }
        #expect(data.count > 50)
        #expect(data.allSatisfy { $0["t"] is Double && $0["bytes"] is Int && $0["received"] is Int })
        // Per task, `received` grows and `t` never goes back.
        for task in 1...3 {
            let mine = data.filter { $0["task"] as? Int == task }
            let received = mine.map { $0["received"] as! Int }
            #expect(received == received.sorted())
            let times = mine.map { $0["t"] as! Double }
            #expect(times == times.sorted())
        }
        #expect(events.filter { $0["event"] as? String == "connected" }.count == 3)
    }

    @Test func sseFramesTheSameObjectsWithEventNamesAndIDs() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let targets = try seedServers(gateway)
        let response = CurlClient().request("\(gateway.url)/api/fetch?mode=blocking&targets=\(targets)&format=sse")
        #expect(response.header("Content-Type") == "text/event-stream")
        let fetchID = try #require(response.header("X-Fetch-Id"))
        var frames = response.text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        // The stream opens with the reconnection delay, then every event has an id.
        #expect(frames.first?.hasPrefix("retry: 1000\nid: \(fetchID)-1\nevent: start\ndata: {\"event\":\"start\"") == true)
        frames[0] = String(frames[0].drop { $0 != "\n" }.dropFirst())
        #expect(frames.last?.contains("event: summary\ndata: ") == true)
        for (index, frame) in frames.enumerated() {
            let lines = frame.split(separator: "\n")
            #expect(lines.count == 3)
            #expect(lines[0] == "id: \(fetchID)-\(index + 1)")
            let name = lines[1].dropFirst("event: ".count)
            let object = try jsonObject(Array(lines[2].dropFirst("data: ".count).utf8))
            #expect(object["event"] as? String == String(name))
        }
    }

    /// EventSource reconnects when a stream ends, with the last id it saw; 204 tells it to stop (HTML standard,
    /// server-sent events), so the fetch is not run again.
    @Test func aReconnectWithLastEventIDGetsNoContentAndNoFetch() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let port = try gateway.startServer("science", numBytes: 500, delay: 0.001)["port"] as! Int
        let url = "\(gateway.url)/api/fetch?targets=\(port)&format=sse"
        let first = CurlClient().request(url)
        #expect(first.status == 200)
        let started = try #require(gateway.metric("poetry_fetches_total"))
        let reconnect = CurlClient().request("GET", url, headers: ["Accept: text/event-stream", "Last-Event-ID: \(first.header("X-Fetch-Id") ?? "")-9"])
        #expect(reconnect.status == 204)
        #expect(reconnect.body.isEmpty)
        #expect(gateway.metric("poetry_fetches_total") == started)
        // A bad query is still refused as such.
        #expect(CurlClient().request("GET", "\(gateway.url)/api/fetch?targets=x", headers: ["Last-Event-ID: 1-1"]).status == 400)
    }

    @Test func eventsLeaveTheGatewayAsTheyHappen() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let port = try gateway.startServer("science", mode: "async", numBytes: 20, delay: 0.01)["port"] as! Int
        let response = CurlClient().request("\(gateway.url)/api/fetch?targets=\(port)&format=ndjson")
        let total = try #require(response.arrivals.last) - response.arrivals.first!
        // 33 sends 10 ms apart: the stream arrives over ~0.33 s, in many pieces, not in one lump at the end.
        #expect(response.arrivals.count > 10)
        #expect(total > 0.2, "stream arrived within \(total)s")
        // And the gateway's own account: every data event was timed from arrival to write.
        let events = try #require(gateway.metric("poetry_stream_event_delay_seconds_count"))
        #expect(events >= 30)
    }

    @Test func aFailingTargetFailsOnlyItsTask() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let good = try gateway.startServer("science", mode: "async", numBytes: 100, delay: 0.001)["port"] as! Int
        let fd = try Socket.listen(on: SocketAddress(host: "127.0.0.1", port: 0), nonBlocking: false)
        let refused = SocketAddress.local(of: fd)!.port
        close(fd)
        for mode in ["async", "blocking"] {
            let events = try ndjson(CurlClient().request("\(gateway.url)/api/fetch?mode=\(mode)&targets=\(good),\(refused),\(good)&format=ndjson").text)
            let failed = events.filter { $0["event"] as? String == "failed" }
            #expect(failed.count == 1)
            #expect(failed.first?["task"] as? Int == 2)
            #expect(failed.first?["message"] as? String == "Connection refused")
            #expect(events.last?["poems"] as? Int == 2)
            #expect(events.last?["failed"] as? Int == 1)
        }
    }

    @Test func aStalledServerTimesOutItsTask() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        // A listener that never accepts: the connection completes in the backlog and no byte ever comes.
        let fd = try Socket.listen(on: SocketAddress(host: "127.0.0.1", port: 0), nonBlocking: false)
        defer { close(fd) }
        let port = SocketAddress.local(of: fd)!.port
        let events = try ndjson(CurlClient().request("\(gateway.url)/api/fetch?targets=\(port)&timeout=0.2&format=ndjson").text)
        #expect(events.contains { $0["event"] as? String == "failed" && ($0["message"] as? String)?.hasPrefix("Timed out") == true })
    }

    @Test func bytesThatAreNotUTF8ArriveMarked() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        // A server that sends a poem with invalid UTF-8 in it, then closes.
        let loop = try BackgroundReactor()
        defer { loop.stop() }
        let port = try loop.sync { [reactor = loop.reactor] () -> UInt16 in
            let listener = try TCPListener(reactor: reactor, address: SocketAddress(host: "127.0.0.1", port: 0)) { [unowned reactor] fd in
                _ = try? TCPConnection(reactor: reactor, fd: fd, handler: SendThenClose(bytes: Array("caf".utf8) + [0xC3, 0x28, 0xFF] + Array(" ok\n".utf8)))
            }
            ServerKeeper.keep(listener)
            return listener.port
        }
        let events = try ndjson(CurlClient().request("\(gateway.url)/api/fetch?targets=\(port)&format=ndjson").text)
        let done = try #require(events.first { $0["event"] as? String == "done" })
        #expect(done["bytes"] as? Int == 10)
        #expect(done["invalidUTF8"] as? Bool == true)
        #expect((done["poem"] as? String)?.contains("\u{FFFD}") == true)
        #expect(events.last?["poems"] as? Int == 1)
    }

    @Test(arguments: [
        ("mode=sideways&targets=1234", 400),
        ("targets=", 400),
        ("", 400),
        ("targets=abc", 400),
        ("targets=1234&format=xml", 400),
        ("targets=1234&timeout=-1", 400),
        ("targets=8.8.8.8:53", 403),
        ("targets=10.0.0.1:80", 403),
        ("targets=1234&timout=5", 400),
        ("targets=1234&mode=async&mode=blocking", 400),
    ])
    func badFetchRequestsAreRefusedBeforeAnySocket(query: String, status: Int) throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let response = CurlClient().request("\(gateway.url)/api/fetch?\(query)")
        #expect(response.status == status, "\(query) → \(response.text)")
        #expect(try jsonObject(response.body)["error"] is String)
        #expect(gateway.metric("poetry_fetches_total") == 0)
    }

    /// A misspelt parameter would otherwise fall back to its default unseen (`timout=5` fetching with 10 s).
    @Test(arguments: [
        ("targets=1234&timout=5", "unknown parameter 'timout'"),
        ("targets=1234&format=ndjson&format=sse", "parameter 'format' is given more than once"),
    ])
    func anUnknownOrRepeatedParameterIsRefusedByName(query: String, message: String) throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let response = CurlClient().request("\(gateway.url)/api/fetch?\(query)")
        #expect(response.status == 400)
        let text = try #require(try jsonObject(response.body)["message"] as? String)
        #expect(text.hasPrefix(message), "\(text)")
    }

    @Test func blockingFetchesAreCappedBecauseEachHoldsAThread() throws {
        let gateway = try TestGateway { $0.maxBlockingFetches = 1 }
        defer { gateway.stop() }
        // 31 sends 0.05 s apart: the first fetch holds the one blocking slot for about 1.5 s.
        let port = try gateway.startServer("ecstasy", mode: "async", numBytes: 100, delay: 0.05)["port"] as! Int
        let first = BackgroundRequest("\(gateway.url)/api/fetch?mode=blocking&targets=\(port)&format=ndjson")
        #expect(gateway.waitUntil(metric: "poetry_fetches_active", is: 1), "the first blocking fetch never started")
        let second = CurlClient().request("\(gateway.url)/api/fetch?mode=blocking&targets=\(port)")
        #expect(second.status == 429)
        #expect(second.text.contains("too_many_blocking_fetches"))
        #expect(CurlClient().request("\(gateway.url)/api/fetch?mode=async&targets=\(port)&timeout=5", timeout: 1).status == 200,
                "async fetches are not held back")
        // The fetch that held the slot ran to its end, undisturbed by the refusal.
        let response = try #require(first.wait())
        #expect(response.status == 200)
        #expect(response.error == nil, "\(response.error ?? "")")
        let events = try ndjson(response.text)
        #expect(events.last?["event"] as? String == "summary")
        #expect(events.last?["poems"] as? Int == 1)
    }

    @Test func headAnswersWithTheStreamsHeadAndStartsNoFetch() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let port = try gateway.startServer("science", mode: "async", numBytes: 10, delay: 0.005)["port"] as! Int
        let head = CurlClient().request("HEAD", "\(gateway.url)/api/fetch?targets=\(port)&format=ndjson")
        #expect(head.status == 200)
        #expect(head.header("Content-Type") == "application/x-ndjson")
        #expect(head.body.isEmpty)
        let badHead = CurlClient().request("HEAD", "\(gateway.url)/api/fetch?targets=nope")
        #expect(badHead.status == 400)
        let metrics = CurlClient().request("\(gateway.url)/metrics").text
        #expect(metrics.contains("poetry_fetches_total 0"), "a HEAD started a fetch")
        // The same URL with GET does fetch.
        _ = CurlClient().request("\(gateway.url)/api/fetch?targets=\(port)&format=ndjson")
        #expect(CurlClient().request("\(gateway.url)/metrics").text.contains("poetry_fetches_total 1"))
    }

    @Test func tooManyTargetsIsAClear4xx() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let targets = Array(repeating: "1234", count: 1001).joined(separator: ",")
        let response = CurlClient().request("\(gateway.url)/api/fetch?targets=\(targets)")
        #expect(response.status == 413)
        #expect(response.text.contains("at most 1000 targets"))
    }

    @Test func hangingUpCancelsTheFetchAndTheGaugesReturnToZero() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let port = try gateway.startServer("ecstasy", mode: "async", numBytes: 10, delay: 0.05)["port"] as! Int
        for mode in ["async", "blocking"] {
            // Summed over every reactor thread: the fetch may run on any of them.
            let descriptorsBefore = try #require(gateway.metric("poetry_reactor_descriptors"))
            let response = CurlClient().request("\(gateway.url)/api/fetch?mode=\(mode)&targets=\(port),\(port)&format=ndjson") { partial in
                // Hang up once poetry is flowing.
                !String(decoding: partial.body, as: UTF8.self).contains("\"event\":\"data\"")
            }
            #expect(response.error != nil, "the transfer was aborted by the client")
            var settled = false
            for _ in 0..<200 {
                if gateway.metric("poetry_fetches_active") == 0 && gateway.metric("poetry_streams_active") == 0 {
                    settled = true
                    break
                }
                usleep(10_000)
            }
            #expect(settled, "\(mode): active gauges did not return to zero")
            usleep(50_000)
            let descriptorsAfter = try #require(gateway.metric("poetry_reactor_descriptors"))
            #expect(descriptorsAfter <= descriptorsBefore + 1, "\(mode): sockets left open (\(descriptorsBefore) → \(descriptorsAfter))")
        }
        #expect(gateway.metric("poetry_fetches_cancelled_total") == 2)
    }

    @Test func blockingAndAsyncFetchesRunWhileOtherRequestsAreAnsweredPromptly() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let targets = try seedServers(gateway, delay: 0.01)
        let results = Locked<[String: CurlResponse]>([:])
        let group = DispatchGroup()
        for mode in ["blocking", "async"] {
            group.enter()
            WorkerThread.start(name: "fetch-\(mode)") {
                let response = CurlClient().request("\(gateway.url)/api/fetch?mode=\(mode)&targets=\(targets)&format=ndjson")
                results.withLock { $0[mode] = response }
                group.leave()
            }
        }
        usleep(100_000)
        var slowest = 0.0
        let client = CurlClient()
        for _ in 0..<20 {
            let start = MonotonicClock.now()
            #expect(client.request("\(gateway.url)/healthz").status == 200)
            slowest = max(slowest, MonotonicClock.seconds(fromNanoseconds: MonotonicClock.now() - start))
            usleep(20_000)
        }
        group.wait()
        let blocking = try ndjson(try #require(results.withLock { $0["blocking"] }).text)
        let async = try ndjson(try #require(results.withLock { $0["async"] }).text)
        let blockingElapsed = try #require(blocking.last?["elapsed"] as? Double)
        let asyncElapsed = try #require(async.last?["elapsed"] as? Double)
        #expect(blocking.last?["poems"] as? Int == 3)
        #expect(async.last?["poems"] as? Int == 3)
        // The seed's point: blocking takes about the sum, async about the slowest.
        #expect(blockingElapsed / asyncElapsed > 1.7, "blocking \(blockingElapsed)s, async \(asyncElapsed)s")
        // And the gateway kept answering: no health check waited on a fetch.
        #expect(slowest < asyncElapsed / 4, "a health check took \(slowest)s while fetches ran for \(asyncElapsed)s")
    }

    @Test func shutdownEndsOpenStreamsWithAFinalEvent() throws {
        let gateway = try TestGateway()
        let port = try gateway.startServer("ecstasy", mode: "async", numBytes: 10, delay: 0.05)["port"] as! Int
        let stream = BackgroundRequest("\(gateway.url)/api/fetch?targets=\(port)&format=ndjson")
        #expect(gateway.waitUntil(metric: "poetry_streams_active", is: 1), "the stream never opened")
        gateway.shutdown()
        #expect(gateway.isStopped)
        let response = try #require(stream.wait(limit: 5))
        #expect(response.error == nil, "the stream ended with its terminating chunk: \(response.error ?? "")")
        let events = try ndjson(response.text)
        #expect(events.last?["event"] as? String == "shutdown")
    }
}

/// Writes its bytes to each client, then closes.
final class SendThenClose: ConnectionHandler {
    let bytes: [UInt8]
    init(bytes: [UInt8]) { self.bytes = bytes }
    func connectionMade(_ connection: TCPConnection) {
        connection.write(bytes)
        connection.close()
    }
    func dataReceived(_ bytes: UnsafeRawBufferPointer) {}
    func connectionLost(_ reason: ConnectionLossReason) {}
}
