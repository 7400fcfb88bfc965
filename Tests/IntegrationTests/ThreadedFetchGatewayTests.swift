#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Reactor
import Testing

@Suite("Gateway: the threaded model and the loop's own events")
struct ThreadedFetchGatewayTests {
    private func seedTargets(_ gateway: TestGateway) throws -> String {
        try [("ecstasy", 30), ("fascination", 10), ("science", 10)].map { poem, bytes in
            String(try gateway.startServer(poem, mode: "async", numBytes: bytes, delay: 0.003)["port"] as! Int)
        }.joined(separator: ",")
    }

    @Test func aThreadedFetchStreamsTheBlockingClientsLinesAndEvents() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let targets = try seedTargets(gateway)
        let text = CurlClient().request("\(gateway.url)/api/fetch?mode=threaded&targets=\(targets)")
        #expect(text.status == 200)
        let lines = text.text.split(separator: "\n").map(String.init)
        #expect(Array(lines.prefix(3)) == targets.split(separator: ",").enumerated().map { "Task \($0.offset + 1): get poetry from: 127.0.0.1:\($0.element)" })
        #expect(lines.contains { $0.wholeMatch(of: /Task 1: got 3003 bytes of poetry from 127\.0\.0\.1:\d+ in 0:00:\d\d\.\d{6}/) != nil })
        #expect(lines.last?.wholeMatch(of: /Got 3 poems in 0:00:\d\d\.\d{6}/) != nil, "\(lines)")

        let events = try ndjson(CurlClient().request("\(gateway.url)/api/fetch?mode=threaded&format=ndjson&targets=\(targets)").text)
        #expect(events.first?["mode"] as? String == "threaded")
        #expect(events.last?["event"] as? String == "summary" && events.last?["poems"] as? Int == 3)
        let blocked = events.filter { $0["event"] as? String == "blocked" }
        #expect(blocked.filter { $0["call"] as? String == "connect" }.count == 3)
        #expect(blocked.contains { $0["call"] as? String == "recv" && $0["seconds"] is Double && $0["t"] is Double && $0["task"] is Int })
    }

    @Test func anAsyncStreamCarriesItsWakeupsAndTheyAddUpToTheBytesRead() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let targets = try seedTargets(gateway)
        let events = try ndjson(CurlClient().request("\(gateway.url)/api/fetch?mode=async&format=ndjson&targets=\(targets)").text)
        let wakeups = events.filter { $0["event"] as? String == "wakeup" }
        let read = events.filter { $0["event"] as? String == "data" }.map { $0["bytes"] as! Int }.reduce(0, +)
        #expect(read == 3003 + 615 + 653)
        #expect(wakeups.map { $0["bytes"] as! Int }.reduce(0, +) == read)
        #expect(wakeups.allSatisfy { ($0["ready"] as? Int ?? 0) >= 1 && ($0["slept"] as? Double ?? -1) >= 0 && $0["t"] is Double })
        #expect(events.filter { $0["event"] as? String == "blocked" }.isEmpty)
    }

    /// --max-blocking-fetches counts threads: a threaded fetch holds one per target.
    @Test func aThreadedFetchCountsAThreadPerTargetAgainstTheLimit() throws {
        let gateway = try TestGateway { $0.maxBlockingFetches = 2 }
        defer { gateway.stop() }
        let port = try gateway.startServer("science", mode: "async", numBytes: 100, delay: 0.001)["port"] as! Int
        let three = CurlClient().request("\(gateway.url)/api/fetch?mode=threaded&targets=\(port),\(port),\(port)")
        #expect(three.status == 429)
        #expect(three.text.contains("too_many_blocking_fetches"))
        let two = CurlClient().request("\(gateway.url)/api/fetch?mode=threaded&format=ndjson&targets=\(port),\(port)")
        #expect(two.status == 200)
        #expect(try ndjson(two.text).last?["poems"] as? Int == 2)
    }
}
