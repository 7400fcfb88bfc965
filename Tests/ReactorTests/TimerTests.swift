import Reactor
import TestSupport
import Testing

@Suite("Timers, on every backend")
struct TimerTests {
    @Test(arguments: BackendKind.allCases)
    func firesInDeadlineOrderWithTiesInSchedulingOrder(backend: BackendKind) throws {
        let reactor = try Reactor(backend: backend)
        var fired: [String] = []
        let now = MonotonicClock.now()
        reactor.callAt(deadline: now + 30_000_000) { fired.append("late") }
        reactor.callAt(deadline: now + 10_000_000) { fired.append("tie-1") }
        reactor.callAt(deadline: now + 10_000_000) { fired.append("tie-2") }
        reactor.callAt(deadline: now + 10_000_000) { fired.append("tie-3") }
        reactor.callLater(0) { fired.append("now") }
        reactor.callLater(0.05) { reactor.stop() }
        try runUntilStopped(reactor)
        #expect(fired == ["now", "tie-1", "tie-2", "tie-3", "late"])
    }

    @Test(arguments: BackendKind.allCases)
    func cancelledTimersNeverFire(backend: BackendKind) throws {
        let reactor = try Reactor(backend: backend)
        var fired: [Int] = []
        var handles: [TimerHandle] = []
        for index in 0..<100 {
            handles.append(reactor.callLater(0.001 * Double(index % 7)) { fired.append(index) })
        }
        for index in stride(from: 0, to: 100, by: 2) { handles[index].cancel() }
        // A timer cancelled by an earlier one in the same batch does not run; cancelling after firing is a no-op.
        let deadline = MonotonicClock.now() + 20_000_000
        var victim: TimerHandle?
        reactor.callAt(deadline: deadline) { victim?.cancel() }
        victim = reactor.callAt(deadline: deadline) { fired.append(-1) }
        let early = reactor.callAt(deadline: deadline) { fired.append(-2) }
        reactor.callAt(deadline: deadline + 1_000_000) { early.cancel() }
        reactor.callLater(0.05) { reactor.stop() }
        try runUntilStopped(reactor)
        #expect(Set(fired) == Set(stride(from: 1, to: 100, by: 2)).union([-2]))
        #expect(handles.allSatisfy { !$0.isPending })
        #expect(reactor.pendingTimers == 0)
    }

    @Test(arguments: BackendKind.allCases)
    func aThousandDueTimersFireInOneIteration(backend: BackendKind) throws {
        let reactor = try Reactor(backend: backend)
        let deadline = MonotonicClock.now() + 20_000_000
        var iterationsSeen = Set<UInt64>()
        var count = 0
        for _ in 0..<1000 {
            reactor.callAt(deadline: deadline) {
                count += 1
                iterationsSeen.insert(reactor.stats.iterations)
            }
        }
        reactor.callAt(deadline: deadline + 10_000_000) { reactor.stop() }
        try runUntilStopped(reactor)
        #expect(count == 1000)
        #expect(iterationsSeen.count == 1)
    }

    @Test func timerWaitIsNotASpin() throws {
        let reactor = try Reactor()
        reactor.callLater(0.1) { reactor.stop() }
        try runUntilStopped(reactor)
        // Waiting 100 ms for one timer takes a handful of wake-ups, not thousands.
        #expect(reactor.stats.iterations < 10)
        #expect(reactor.stats.blockedNanoseconds > reactor.stats.busyNanoseconds)
    }
}

/// Timers on a reactor whose time is a manual clock: they fire when the clock, not the wall, reaches them.
@Suite("Timers on a manual clock")
struct ManualClockTimerTests {
    @Test func timersFireInDeadlineOrderOnlyWhenTheClockReachesThem() throws {
        let clock = ManualClock()
        let reactor = try Reactor(backend: .epoll, clock: clock)
        var fired: [String] = []
        reactor.callLater(5) { fired.append("five") }
        reactor.callLater(1) { fired.append("one") }
        let cancelled = reactor.callLater(3) { fired.append("three") }
        try reactor.runOnce()
        #expect(fired.isEmpty)
        clock.advance(seconds: 1)
        try reactor.runOnce()
        #expect(fired == ["one"])
        cancelled.cancel()
        clock.advance(seconds: 10)
        try reactor.runOnce()
        #expect(fired == ["one", "five"])
        #expect(reactor.now == clock.now())
    }
}
