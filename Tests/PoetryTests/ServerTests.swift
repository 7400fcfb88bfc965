#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import Poetry
import Reactor
import Synchronization
import Testing

@Suite("Slow poetry servers")
struct ServerTests {
    @Test func blockingServerServesOneClientAtATime() throws {
        let config = PoetryServerConfig(poem: poem("science"), address: try SocketAddress(host: "127.0.0.1", port: 0), numBytes: 50, delay: 0.005)
        let server = try BlockingPoetryServer(config: config)
        let thread = Thread { server.run { _ in } }
        thread.start()
        defer { server.stop() }
        // Two clients at once: the second's first byte must come after the first's poem ended.
        let targets = tasks([server.port])
        let results = Locked<[(start: Double, end: Double)]>([])
        let group = DispatchGroup()
        let origin = MonotonicClock.now()
        for _ in 0..<2 {
            group.enter()
            Thread {
                var first: Double?
                var last = 0.0
                BlockingFetch.run(tasks: targets, timeout: 5) { event in
                    let now = MonotonicClock.seconds(fromNanoseconds: MonotonicClock.now() - origin)
                    if case .received = event { first = first ?? now }
                    if case .finished = event { last = now }
                }
                results.withLock { $0.append((first ?? -1, last)) }
                group.leave()
            }.start()
        }
        group.wait()
        let spans = results.withLock { $0 }.sorted { $0.start < $1.start }
        #expect(spans.count == 2)
        // As a ratio of the first poem's span, not a fixed slack: each client's times are taken on its own thread,
        // which a busy machine may run milliseconds late. Served at once, the two spans would overlap almost whole.
        let firstSpan = spans[0].end - spans[0].start
        #expect(spans[1].start >= spans[0].end - firstSpan / 2, "second client was served while the first was: \(spans)")
        #expect(server.clientsServed == 2)
    }

    @Test func blockingServerStopsMidPoemAndFreesItsPort() throws {
        let config = PoetryServerConfig(poem: poem("ecstasy"), address: try SocketAddress(host: "127.0.0.1", port: 0), numBytes: 10, delay: 0.5)
        let server = try BlockingPoetryServer(config: config)
        let port = server.port
        let finished = Atomic<Bool>(false)
        Thread {
            server.run { _ in }
            finished.store(true, ordering: .releasing)
        }.start()
        let client = try Socket.makeStream(for: try SocketAddress(host: "127.0.0.1", port: port), nonBlocking: false)
        defer { close(client) }
        _ = try SocketAddress(host: "127.0.0.1", port: port).withSockAddr { connect(client, $0, $1) }
        var byte: UInt8 = 0
        #expect(recv(client, &byte, 1, 0) == 1, "the server started sending")
        let stopAt = MonotonicClock.now()
        server.stop()
        while !finished.load(ordering: .acquiring) && MonotonicClock.now() - stopAt < 2_000_000_000 { usleep(1000) }
        let didFinish = finished.load(ordering: .acquiring)
        #expect(didFinish)
        #expect(MonotonicClock.now() - stopAt < 1_000_000_000)
        // The port can be bound again.
        let again = try Socket.listen(on: try SocketAddress(host: "127.0.0.1", port: port), nonBlocking: false)
        close(again)
    }

    /// poll(2) and ppoll(2) as /proc/TID/syscall numbers them.
    private var pollSyscalls: Set<Int> {
        #if arch(x86_64)
        return [7, 271]
        #elseif arch(arm64)
        return [73]
        #else
        return []
        #endif
    }

    @Test func blockingServerStopsWhileBlockedInAccept() throws {
        let config = PoetryServerConfig(poem: poem("science"), address: try SocketAddress(host: "127.0.0.1", port: 0))
        let server = try BlockingPoetryServer(config: config)
        let finished = DispatchSemaphore(value: 0)
        // A name of its own, to find the thread among this process's tasks.
        let name = "accept-\(server.port)"
        WorkerThread.start(name: name) {
            server.run { _ in }
            finished.signal()
        }
        // Proof that it got there: the server's thread sits in the poll that waits for a client (or the stop pipe).
        var inPoll = false
        for _ in 0..<5_000 where !inPoll {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
            let tid = tasks.first { (try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8)) == name + "\n" }
            if let tid, let call = try? String(contentsOfFile: "/proc/self/task/\(tid)/syscall", encoding: .utf8) {
                let number = call.split(separator: " ").first.flatMap { Int($0) }
                inPoll = number.map(pollSyscalls.contains) ?? false
            }
            if !inPoll { usleep(1000) }
        }
        #expect(inPoll, "the server never reached its wait for a client")
        server.stop()
        #expect(finished.wait(timeout: .now() + 10) == .success, "stop() did not end a server waiting for a client")
    }

    /// The blocking server's lifecycle: a stop before run is kept (the run returns without serving), and a second
    /// run of a serving server is a bug the table refuses (it traps).
    @Test func aBlockingServerStoppedBeforeItRunsNeverServes() throws {
        let config = PoetryServerConfig(poem: poem("science"), address: try SocketAddress(host: "127.0.0.1", port: 0))
        let server = try BlockingPoetryServer(config: config)
        let client = try Socket.makeStream(for: try SocketAddress(host: "127.0.0.1", port: server.port), nonBlocking: false)
        defer { close(client) }
        _ = try SocketAddress(host: "127.0.0.1", port: server.port).withSockAddr { connect(client, $0, $1) }
        server.stop()
        var events = 0
        server.run { _ in events += 1 }
        #expect(events == 0 && server.clientsServed == 0)
        #expect(BlockingServerLifecycle.serving.next(on: .run) == nil)
        #expect(BlockingServerLifecycle.bound.next(on: .run) == .serving)
        #expect(BlockingServerLifecycle.serving.next(on: .stop) == .stopped)
    }

    @Test func asyncServerPacesEveryClientByDeadline() throws {
        // Each poem takes ceil(653/50) = 14 sends × 0.01 s ≈ 0.14 s, however many clients: 100 at once take about
        // as long as one alone (a ratio, not a wall-clock bound, so a slow machine does not fail it).
        let farm = try ServerFarm([.poem(poem("science"), numBytes: 50, delay: 0.01)])
        defer { farm.stop() }
        let port = farm.boundPorts[0]
        let alone = try #require(try runAsyncFetch(tasks([port])).summary?.elapsed)
        let many = tasks(Array(repeating: port, count: 100))
        let events = try runAsyncFetch(many)
        #expect(events.summary?.poems == 100)
        let elapsed = try #require(events.summary?.elapsed)
        #expect(elapsed >= 0.13)
        #expect(elapsed < alone * 2.5, "pacing drifted under load: \(elapsed)s for 100 clients, \(alone)s for one")
        // Sent in slices, not at once: of 14 sends a slow reader (a loaded host, ThreadSanitizer) may read two as one.
        #expect(events.receivedChunks(task: 50).count >= 7, "sent in slices, not at once")
    }

    @Test func aClientThatLeavesEarlyNeverStopsTheServer() throws {
        let farm = try ServerFarm([.poem(poem("science"), numBytes: 10, delay: 0.002)])
        defer { farm.stop() }
        let port = farm.boundPorts[0]
        for _ in 0..<3 {
            let fd = try Socket.makeStream(for: try SocketAddress(host: "127.0.0.1", port: port), nonBlocking: false)
            _ = try SocketAddress(host: "127.0.0.1", port: port).withSockAddr { connect(fd, $0, $1) }
            var byte: UInt8 = 0
            _ = recv(fd, &byte, 1, 0)
            Socket.setLingerZero(fd)
            close(fd)
        }
        let events = try runAsyncFetch(tasks([port]))
        #expect(events.poem(task: 1) == poem("science"))
    }
}
