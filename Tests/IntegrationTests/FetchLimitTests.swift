#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Reactor
import Synchronization
import Testing

/// A loopback server that sends `chunk` bytes every `interval` seconds (0: as fast as the client reads) to each
/// client in turn, until the client goes away: a target that never ends its "poem".
final class EndlessServer: Sendable {
    let port: UInt16
    private let listenFD: Int32
    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    init(chunk: Int, interval: Double = 0) throws {
        listenFD = try Socket.listen(on: SocketAddress(host: "127.0.0.1", port: 0), nonBlocking: false)
        port = SocketAddress.local(of: listenFD)!.port
        let fd = listenFD
        WorkerThread.start(name: "endless-server") { [self] in
            let bytes = [UInt8](repeating: UInt8(ascii: "a"), count: chunk)
            while !stopped.load(ordering: .acquiring) {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { break }
                Socket.setTimeouts(client, seconds: 5)
                while !stopped.load(ordering: .acquiring) {
                    let sent: Bool = bytes.withUnsafeBytes { raw in
                        do throws(SystemError) { try Socket.sendAll(client, raw); return true } catch { return false }
                    }
                    guard sent else { break }
                    if interval > 0 { usleep(UInt32(interval * 1_000_000)) }
                }
                close(client)
            }
            self.finished.signal()
        }
    }

    func stop() {
        stopped.store(true, ordering: .releasing)
        shutdown(listenFD, Int32(SHUT_RDWR))  // wakes accept
        _ = finished.wait(timeout: .now() + 10)
        close(listenFD)
    }
}

@Suite("How much one fetch may take: poem bytes, deadline; a poem cut short")
struct FetchLimitTests {
    /// A target that never stops sending fails its task at the cap, in both modes: what a task keeps never passes
    /// it, so the gateway's memory stays bounded whatever the target sends.
    @Test(arguments: ["async", "blocking", "threaded"])
    func aTargetThatSendsWithoutEndFailsAtTheCap(mode: String) throws {
        let gateway = try TestGateway { $0.maxPoemBytes = 200_000 }
        defer { gateway.stop() }
        let server = try EndlessServer(chunk: 16 * 1024)
        defer { server.stop() }
        let poemPort = try gateway.startServer("science", mode: "async", numBytes: 200, delay: 0.001)["port"] as! Int
        let response = CurlClient().request("\(gateway.url)/api/fetch?mode=\(mode)&format=ndjson&targets=\(server.port),\(poemPort)", timeout: 60)
        let events = try ndjson(response.text)
        let failed = events.filter { $0["event"] as? String == "failed" }
        #expect(failed.count == 1)
        #expect(failed.first?["task"] as? Int == 1)
        let message = failed.first?["message"] as? String ?? ""
        #expect(message.contains("200000 bytes") && message.contains("--max-poem-bytes"), "\(message)")
        let received = events.filter { $0["event"] as? String == "data" && $0["task"] as? Int == 1 }.compactMap { $0["received"] as? Int }
        #expect((received.max() ?? 0) <= 200_000)
        // The other task is untouched: the limit fails one task, not the fetch.
        let done = events.filter { $0["event"] as? String == "done" }
        #expect(done.count == 1)
        #expect(done.first?["task"] as? Int == 2)
        #expect(events.last?["failed"] as? Int == 1)
        #expect(events.last?["poems"] as? Int == 1)
    }

    /// A target that trickles often enough never stalls; the whole-task deadline still ends it.
    @Test(arguments: ["async", "blocking", "threaded"])
    func aTargetThatTricklesForeverMeetsTheDeadline(mode: String) throws {
        let gateway = try TestGateway { $0.fetchDeadline = 0.4 }
        defer { gateway.stop() }
        let server = try EndlessServer(chunk: 1, interval: 0.01)
        defer { server.stop() }
        let response = CurlClient().request("\(gateway.url)/api/fetch?mode=\(mode)&format=ndjson&timeout=5&targets=\(server.port)", timeout: 60)
        let events = try ndjson(response.text)
        let failed = events.first { $0["event"] as? String == "failed" }
        let message = failed?["message"] as? String ?? ""
        #expect(message.contains("0.4s") && message.contains("--fetch-deadline"), "\(message)")
        #expect(events.contains { $0["event"] as? String == "data" }, "it was trickling, not stalled")
        #expect(events.last?["failed"] as? Int == 1)
    }

    /// DELETE of a blocking server mid-poem: the client must not take the part it got for the whole poem.
    @Test(arguments: ["async", "blocking", "threaded"])
    func aBlockingServerDeletedMidPoemIsAFailedTask(mode: String) throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let server = try gateway.startServer("ecstasy", mode: "blocking", numBytes: 10, delay: 0.05)
        let id = server["id"] as! Int
        let port = server["port"] as! Int
        let firstData = DispatchSemaphore(value: 0)
        let seen = Locked(false)
        let result = Locked<CurlResponse?>(nil)
        let done = DispatchSemaphore(value: 0)
        WorkerThread.start(name: "stream") {
            let response = CurlClient().request("\(gateway.url)/api/fetch?mode=\(mode)&format=ndjson&targets=\(port)", timeout: 30) { sofar in
                if sofar.text.contains(#""event":"data""#), !seen.withLock({ old in defer { old = true }; return old }) { firstData.signal() }
                return true
            }
            result.withLock { $0 = response }
            done.signal()
        }
        #expect(firstData.wait(timeout: .now() + 10) == .success)
        #expect(CurlClient().request("DELETE", "\(gateway.url)/api/servers/\(id)").status == 204)
        #expect(done.wait(timeout: .now() + 10) == .success)
        let events = try ndjson(try #require(result.withLock { $0 }).text)
        #expect(!events.contains { $0["event"] as? String == "done" }, "a poem cut short is not done")
        let failed = events.first { $0["event"] as? String == "failed" }
        let message = failed?["message"] as? String ?? ""
        #expect(message.hasPrefix("Connection reset by peer after ") && message.hasSuffix(" bytes: the server stopped mid-poem"), "\(message)")
        #expect(events.last?["failed"] as? Int == 1)
        #expect(events.last?["poems"] as? Int == 0)
    }
}
