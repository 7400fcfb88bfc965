import Foundation
import Poetry
import Reactor
import Testing

/// The seed's scenario with small delays: ecstasy at 30 bytes, fascination and science at 10, every `delay`.
private func seedFarm(delay: Double, backend: BackendKind = .epoll) throws -> ServerFarm {
    try ServerFarm([
        .poem(poem("ecstasy"), numBytes: 30, delay: delay),
        .poem(poem("fascination"), numBytes: 10, delay: delay),
        .poem(poem("science"), numBytes: 10, delay: delay),
    ], backend: backend)
}

@Suite("Fetching poems, blocking and async")
struct FetchTests {
    @Test func blockingTakesAboutTheSumAndAsyncAboutTheSlowest() throws {
        let delay = 0.005
        let farm = try seedFarm(delay: delay)
        defer { farm.stop() }
        let targets = tasks(farm.boundPorts)
        let blocking = runBlockingFetch(targets)
        let async = try runAsyncFetch(targets)
        let blockingElapsed = try #require(blocking.summary?.elapsed)
        let asyncElapsed = try #require(async.summary?.elapsed)
        #expect(blocking.summary?.poems == 3)
        #expect(async.summary?.poems == 3)
        // Sends: 101 + 62 + 66 = 229 for blocking, the longest (101) for async: a ratio near 2.3.
        let ratio = blockingElapsed / asyncElapsed
        #expect(ratio > 1.7, "blocking \(blockingElapsed)s vs async \(asyncElapsed)s")
        #expect(ratio < 3.0, "blocking \(blockingElapsed)s vs async \(asyncElapsed)s")
        for task in 1...3 {
            #expect(blocking.poem(task: task) == async.poem(task: task))
        }
        #expect(async.poem(task: 1) == poem("ecstasy"))
    }

    @Test func blockingOpensTheNextConnectionOnlyAfterThePreviousPoemEnds() throws {
        let farm = try seedFarm(delay: 0.002)
        defer { farm.stop() }
        let events = runBlockingFetch(tasks(farm.boundPorts))
        var finishedAt: [Int: Double] = [:]
        var connectingAt: [Int: Double] = [:]
        var order: [Int] = []
        for event in events {
            switch event {
            case .connecting(let task, let t): connectingAt[task] = t
            case .finished(let task, _, _, let t): finishedAt[task] = t
            case .received(let task, _, _, _): if order.last != task { order.append(task) }
            default: break
            }
        }
        #expect(order == [1, 2, 3], "blocking reads never interleave")
        #expect(connectingAt[2]! >= finishedAt[1]!)
        #expect(connectingAt[3]! >= finishedAt[2]!)
    }

    @Test(arguments: BackendKind.allCases)
    func asyncInterleavesOnEveryBackend(backend: BackendKind) throws {
        let farm = try seedFarm(delay: 0.003)
        defer { farm.stop() }
        let events = try runAsyncFetch(tasks(farm.boundPorts), backend: backend)
        #expect(events.summary?.poems == 3)
        #expect(events.poem(task: 2) == poem("fascination"))
        #expect(events.poem(task: 3) == poem("science"))
        #expect(events.taskSwitches > 20, "async reads interleave across tasks")
        if case .started(let mode, let started) = events.first {
            #expect(mode == .async)
            #expect(started.count == 3)
        } else {
            Issue.record("first event is not .started")
        }
        guard case .summary = events.last else {
            Issue.record("last event is not .summary")
            return
        }
    }

    @Test(arguments: FetchMode.allCases)
    func aFailingServerFailsOnlyItsOwnTask(mode: FetchMode) throws {
        let farm = try ServerFarm([
            .poem(poem("science"), numBytes: 50, delay: 0.002),
            .resetAfter(poem("ecstasy"), bytes: 100),
            .stall,
            .poem(poem("fascination"), numBytes: 50, delay: 0.002),
        ])
        defer { farm.stop() }
        let ports = farm.boundPorts
        let refused = closedPortNumber()
        let targets = tasks([ports[0], ports[1], ports[2], refused, ports[3]])
        let events = try runFetch(mode, targets, timeout: 0.3)
        #expect(events.poem(task: 1) == poem("science"))
        #expect(events.failure(task: 2)?.hasPrefix("Connection reset by peer") == true)
        #expect(events.failure(task: 3)?.hasPrefix("Timed out") == true)
        #expect(events.failure(task: 4) == "Connection refused")
        #expect(events.poem(task: 5) == poem("fascination"))
        #expect(events.summary?.poems == 2)
        #expect(events.summary?.failed == 3)
    }

    @Test func aFanOutCanCountPoemsWithoutKeepingThem() throws {
        let farm = try ServerFarm([.poem(poem("science"), numBytes: 100, delay: 0.001)])
        defer { farm.stop() }
        let reactor = try Reactor()
        var finished: [(bytes: Int, kept: Int)] = []
        let fetch = AsyncFetch(reactor: reactor, tasks: tasks(Array(repeating: farm.boundPorts[0], count: 20)), keepPoems: false) { event in
            if case .finished(_, let bytes, let poem, _) = event { finished.append((bytes, poem.count)) }
            if case .summary = event { reactor.stop() }
        }
        fetch.start()
        try reactor.run()
        #expect(finished.count == 20)
        #expect(finished.allSatisfy { $0.bytes == 653 && $0.kept == 0 })
    }

    @Test func utf8SplitAcrossReadsIsDecodedWholeOnceComplete() throws {
        let bytes = poem("alla_sera")
        let farm = try ServerFarm([.poem(bytes, numBytes: 10, delay: 0.001)])
        defer { farm.stop() }
        let events = try runAsyncFetch(tasks(farm.boundPorts))
        let received = try #require(events.poem(task: 1))
        #expect(received == bytes)
        #expect(events.receivedChunks(task: 1).reduce(0, +) == 577)
        // Some 10-byte slice ends inside a character, so chunk-wise decoding would have corrupted it.
        let splitsACharacter = stride(from: 0, to: bytes.count, by: 10).contains { start in
            let slice = bytes[start..<min(start + 10, bytes.count)]
            return String(validating: slice, as: UTF8.self) == nil
        }
        #expect(splitsACharacter)
        let text = String(decoding: received, as: UTF8.self)
        #expect(!text.contains("\u{FFFD}"))
        #expect(text.contains("perché"))
    }
}

func closedPortNumber() -> UInt16 {
    let fd = try! Socket.listen(on: try! SocketAddress(host: "127.0.0.1", port: 0), nonBlocking: false)
    let port = SocketAddress.local(of: fd)!.port
    close(fd)
    return port
}
