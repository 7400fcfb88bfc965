import Poetry
import Reactor
import TestSupport
import Testing

@Suite("The threaded model, and how each model waits")
struct ThreadedAndLoopTests {
    private func seedFarm(delay: Double) throws -> ServerFarm {
        try ServerFarm([
            .poem(poem("ecstasy"), numBytes: 30, delay: delay),
            .poem(poem("fascination"), numBytes: 10, delay: delay),
            .poem(poem("science"), numBytes: 10, delay: delay),
        ])
    }

    @Test func threadedFetchesEveryPoemAtOnceOnAThreadEach() throws {
        let farm = try seedFarm(delay: 0.003)
        defer { farm.stop() }
        let events = runThreadedFetch(tasks(farm.boundPorts))
        guard case .started(.threaded, let started) = events.first else {
            Issue.record("first event is not .started(.threaded)")
            return
        }
        #expect(started.count == 3)
        guard case .summary(3, 0, _) = events.last else {
            Issue.record("last event is not a summary of 3 poems: \(String(describing: events.last))")
            return
        }
        for (task, name) in [(1, "ecstasy"), (2, "fascination"), (3, "science")] {
            #expect(events.poem(task: task) == poem(name))
        }
        // Every task connects before any poem ends, and reads from different tasks interleave.
        let firstFinish = try #require(events.firstIndex { if case .finished = $0 { return true } else { return false } })
        let connectingBefore = events[..<firstFinish].filter { if case .connecting = $0 { return true } else { return false } }
        #expect(connectingBefore.count == 3)
        #expect(events.taskSwitches > 20, "threaded reads interleave across tasks")
        // Each task's own events stay in order: connecting, connected, reads, then its end.
        for task in 1...3 {
            let mine = events.filter { $0.task == task && !$0.isLoopView }
            guard case .connecting = mine.first, case .connected = mine.dropFirst().first, case .finished = mine.last else {
                Issue.record("task \(task): \(mine.prefix(2)) … \(String(describing: mine.last))")
                continue
            }
        }
    }

    @Test(arguments: [FetchMode.blocking, .threaded])
    func aBlockingThreadReportsEveryWaitInConnectAndRecv(mode: FetchMode) throws {
        let farm = try seedFarm(delay: 0.002)
        defer { farm.stop() }
        let events = try runFetch(mode, tasks(farm.boundPorts))
        let elapsed = try #require(events.summary?.elapsed)
        for task in 1...3 {
            let mine = events.filter { $0.task == task }
            var connects = 0
            var waited = 0.0
            for (index, event) in mine.enumerated() {
                switch event {
                case .blocked(_, .connect, _, let seconds):
                    connects += 1
                    waited += seconds
                case .blocked(_, .recv, _, let seconds):
                    waited += seconds
                case .received:
                    // Every read is the end of a wait in recv, reported just before it.
                    guard index > 0, case .blocked(_, .recv, _, _) = mine[index - 1] else {
                        Issue.record("task \(task): a read without its recv wait before it")
                        return
                    }
                default: break
                }
            }
            #expect(connects == 1)
            // A slow server keeps each thread waiting nearly all the time it works on its poem.
            #expect(waited > 0 && waited <= elapsed)
        }
    }

    @Test func asyncWakeupsAccountForEveryByteAndNeverOverlap() throws {
        let farm = try seedFarm(delay: 0.003)
        defer { farm.stop() }
        let events = try runAsyncFetch(tasks(farm.boundPorts))
        let elapsed = try #require(events.summary?.elapsed)
        var wakeups: [(ready: Int, bytes: Int, t: Double, slept: Double)] = []
        for case .wakeup(let ready, let bytes, let t, let slept) in events { wakeups.append((ready, bytes, t, slept)) }
        let bytesRead = events.reduce(0) { total, event in
            if case .received(_, let bytes, _, _) = event { return total + bytes } else { return total }
        }
        #expect(wakeups.map(\.bytes).reduce(0, +) == bytesRead)
        #expect(bytesRead == 3003 + 615 + 653)
        // At most one wake-up per socket event, and some wake-ups serve more than one read.
        let reads = events.filter { if case .received = $0 { return true } else { return false } }.count
        #expect(wakeups.count > 50 && wakeups.count <= reads + 6)
        #expect(wakeups.allSatisfy { (1...3).contains($0.ready) && $0.slept >= 0 })
        #expect(wakeups.map(\.t) == wakeups.map(\.t).sorted())
        let slept = wakeups.map(\.slept).reduce(0, +)
        #expect(slept > 0 && slept <= elapsed)
        guard case .summary = events.last else {
            Issue.record("the summary is not last")
            return
        }
    }

    /// io_uring's batched waits (Linux 6.12): a wake-up serves several reads where an ordinary wait wakes for
    /// nearly each one, and every byte still arrives, in order, on its own task.
    @Test(.enabled(if: (try? Reactor(backend: .ioUring, waitBatch: .fanOut))?.batchesWaits ?? false,
                   "the kernel has no batched waits (before 6.12)"))
    func batchedWaitsServeSeveralReadsAWakeupAndLoseNothing() throws {
        let farm = try seedFarm(delay: 0.003)
        defer { farm.stop() }
        func wakeupCount(_ events: [FetchEvent]) -> Int {
            events.filter { if case .wakeup = $0 { return true } else { return false } }.count
        }
        let ordinary = try runAsyncFetch(tasks(farm.boundPorts), backend: .ioUring)
        let batched = try runAsyncFetch(tasks(farm.boundPorts), backend: .ioUring,
                                        waitBatch: WaitBatch(completions: 64, maxDelayMicroseconds: 20_000))
        #expect(batched.summary?.poems == 3)
        #expect(batched.poem(task: 1) == poem("ecstasy"))
        #expect(batched.poem(task: 2) == poem("fascination"))
        #expect(batched.poem(task: 3) == poem("science"))
        #expect(wakeupCount(batched) * 2 < wakeupCount(ordinary),
                "batched \(wakeupCount(batched)) wake-ups, ordinary \(wakeupCount(ordinary))")
    }

    @Test func titlesLoseTheSeedsStraySpaces() {
        let catalog = PoemCatalog(directory: "\(projectRoot)/poetry")
        #expect(catalog.entry(named: "alla_sera")?.title == "Alla Sera (To Evening)")
        #expect(catalog.entry(named: "fascination")?.title == "The Fascination of what's Difficult")
    }
}
