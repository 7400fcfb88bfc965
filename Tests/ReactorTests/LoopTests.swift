#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import Reactor
import Synchronization
import Testing

@Suite("The loop: wake-ups, signals, stale events, descriptor limits")
struct LoopTests {
    @Test(arguments: BackendKind.allCases)
    func crossThreadCallsAreNeverLost(backend: BackendKind) throws {
        let reactor = try Reactor(backend: backend)
        let threads = 8
        let perThread = 10_000
        // Mutated only on the reactor thread, inside the posted calls.
        final class Counter: @unchecked Sendable { var value = 0 }
        let counter = Counter()
        let started = Atomic<Int>(0)
        for _ in 0..<threads {
            Thread {
                started.add(1, ordering: .relaxed)
                for _ in 0..<perThread {
                    reactor.execute {
                        counter.value += 1
                        if counter.value == threads * perThread { reactor.stop() }
                    }
                }
            }.start()
        }
        try runUntilStopped(reactor, limit: 60)
        #expect(counter.value == threads * perThread)
        #expect(reactor.stats.crossThreadCalls == UInt64(threads * perThread))
    }

    /// The hook for work gathered over a turn (a command's output lines) runs once per turn, after the turn's timers
    /// and deferred calls and before the loop waits: what they produced is out before the loop sleeps.
    @Test func theBeforeWaitHookRunsOncePerTurnAfterTheTurnsCallbacks() throws {
        let reactor = try Reactor()
        var produced: [UInt64] = []
        var handled: [UInt64] = []
        var hookTurns: [UInt64] = []
        reactor.beforeEachWait {
            hookTurns.append(reactor.stats.iterations)
            handled.append(contentsOf: produced)
            produced.removeAll()
        }
        reactor.callLater(0.01) {
            produced.append(reactor.stats.iterations)
            reactor.callSoon {
                produced.append(reactor.stats.iterations)
                reactor.stop()
            }
        }
        try runUntilStopped(reactor)
        // Both callbacks' work was handled by the hook of their own turn, before the wait that ended it.
        #expect(produced.isEmpty)
        try #require(handled.count == 2)
        let first = try #require(hookTurns.first)
        #expect(hookTurns == Array(first..<first + UInt64(hookTurns.count)), "once per turn: \(hookTurns)")
        #expect(hookTurns.contains(handled[0]) && hookTurns.contains(handled[1]))
    }

    /// Deferred calls run in order on the next turn; a call made by one of them waits for the turn after, so a
    /// chain of them can never spin one iteration forever. (The loop swaps two arrays to run them: this is what
    /// that swap must keep.)
    @Test func callSoonRunsInOrderAndCallsMadeMeanwhileWaitATurn() throws {
        let reactor = try Reactor()
        var log: [(String, UInt64)] = []
        func record(_ name: String) { log.append((name, reactor.stats.iterations)) }
        reactor.callSoon {
            record("a")
            reactor.callSoon {
                record("c")
                reactor.callSoon {
                    record("e")
                    reactor.stop()
                }
            }
        }
        reactor.callSoon {
            record("b")
            reactor.callSoon { record("d") }
        }
        try runUntilStopped(reactor)
        #expect(log.map(\.0) == ["a", "b", "c", "d", "e"])
        let turns = log.map(\.1)
        #expect(turns[0] == turns[1] && turns[2] == turns[3], "\(log)")
        #expect(turns[2] > turns[1] && turns[4] > turns[3], "\(log)")
    }

    /// A stop that comes before `run()` (a signal handled while the thread is still starting) is kept: `run()`
    /// returns before anything else can happen, here a timer that would otherwise end the loop instead.
    @Test(arguments: BackendKind.allCases)
    func aStopBeforeRunIsKept(backend: BackendKind) throws {
        let reactor = try Reactor(backend: backend)
        let stopped = DispatchSemaphore(value: 0)
        Thread {
            reactor.stop()
            stopped.signal()
        }.start()
        stopped.wait()
        var fallbackFired = false
        reactor.callLater(10) {
            fallbackFired = true
            reactor.stop()
        }
        try reactor.run()
        #expect(!fallbackFired, "the stop sent before run() was lost")
        #expect(reactor.stats.iterations == 0)

        // And once returned the reactor runs again, until the next stop.
        reactor.callSoon { reactor.stop() }
        try reactor.run()
        #expect(!fallbackFired)
        #expect(reactor.stats.iterations >= 1)
    }

    /// Debug builds catch a reactor-confined call made off the loop thread while the loop runs (as NIO's
    /// `assertInEventLoop` does); the same call before `run()`, or posted with `execute`, is fine.
    @Test func aConfinedCallOffTheLoopThreadTrapsInDebugBuilds() async {
        #if DEBUG
        await #expect(processExitsWith: .failure) {
            let reactor = try! Reactor()
            let running = DispatchSemaphore(value: 0)
            reactor.callSoon { running.signal() }
            Thread { try? reactor.run() }.start()
            running.wait()
            reactor.callSoon {}
        }
        await #expect(processExitsWith: .success) {
            let reactor = try! Reactor()
            let running = DispatchSemaphore(value: 0)
            reactor.callSoon { running.signal() }
            Thread { try? reactor.run() }.start()
            running.wait()
            let done = DispatchSemaphore(value: 0)
            reactor.execute {
                reactor.callSoon { done.signal() }
            }
            done.wait()
            reactor.stop()
        }
        #endif
    }

    /// A warning repeated in a flood is let through once per interval, saying how many it stands for.
    @Test func aLogThrottleAdmitsOncePerIntervalAndCountsWhatItHeldBack() {
        var throttle = LogThrottle(seconds: 1)
        let second: UInt64 = 1_000_000_000
        #expect(throttle.admit(now: 5 * second) == 1)
        #expect(throttle.admit(now: 5 * second + 1) == nil)
        #expect(throttle.admit(now: 5 * second + second / 2) == nil)
        #expect(throttle.admit(now: 6 * second) == 3)
        #expect(throttle.admit(now: 6 * second + 10) == nil)
        #expect(throttle.admit(now: 9 * second) == 2)
    }

    @Test(.serialized, arguments: BackendKind.allCases)
    func aSignalBecomesAnOrderlyStopOnTheLoopThread(backend: BackendKind) throws {
        let reactor = try Reactor(backend: backend)
        var received: Int32 = 0
        let loopThread = pthread_self()
        var onLoopThread = false
        // A handler replaced before the loop runs: its pipe is unregistered and closed, and it hears nothing.
        var replacedCalls = 0
        try reactor.onSignals { _ in replacedCalls += 1 }
        let registeredWithFirst = reactor.stats.registeredDescriptors
        try reactor.onSignals { signo in
            received = signo
            onLoopThread = pthread_equal(pthread_self(), loopThread) != 0
            reactor.stop()
        }
        reactor.callLater(0.01) { kill(getpid(), SIGTERM) }
        try runUntilStopped(reactor)
        #expect(received == SIGTERM)
        #expect(onLoopThread)
        #expect(replacedCalls == 0)
        #expect(reactor.stats.registeredDescriptors == registeredWithFirst, "the replaced pipe is still registered")
    }

    @Test(arguments: BackendKind.allCases)
    func aClosedDescriptorsStaleEventIsNotDeliveredToItsSuccessor(backend: BackendKind) throws {
        let reactor = try Reactor(backend: backend)
        // Two readable pipes; whichever is dispatched first closes the other and reuses its number for a new,
        // empty pipe. The newcomer must not be told it is readable in this iteration.
        final class PipeHandler: IOHandler {
            let onRead: () -> Void
            init(onRead: @escaping () -> Void) { self.onRead = onRead }
            func readable() { onRead() }
            func writable() {}
            func hangup() {}
        }
        func makePipe() -> (Int32, Int32) {
            var fds: [Int32] = [0, 0]
            pipe(&fds)
            return (fds[0], fds[1])
        }
        let a = makePipe()
        let b = makePipe()
        var one: UInt8 = 1
        write(a.1, &one, 1)
        write(b.1, &one, 1)
        var newcomerCalls = 0
        var firstCalls = 0
        var replacement: (Int32, Int32) = (-1, -1)
        func react(other: (Int32, Int32)) {
            firstCalls += 1
            guard firstCalls == 1 else { return }
            reactor.unregister(fd: other.0)
            close(other.1)
            // dup2 closes the old read end and puts a new, empty pipe's read end on the same number at once (a
            // plain close and pipe() could lose the number to another test's descriptor in this process).
            replacement = makePipe()
            #expect(dup2(replacement.0, other.0) == other.0)
            close(replacement.0)
            replacement.0 = other.0
            try? reactor.register(fd: other.0, interest: .read, handler: PipeHandler { newcomerCalls += 1 })
            reactor.callLater(0.02) { reactor.stop() }
        }
        try reactor.register(fd: a.0, interest: .read, handler: PipeHandler { react(other: b) })
        try reactor.register(fd: b.0, interest: .read, handler: PipeHandler { react(other: a) })
        try runUntilStopped(reactor)
        #expect(firstCalls >= 1)
        #expect(newcomerCalls == 0)
    }

    @Test func selectRefusesADescriptorPastFDSetSize() throws {
        raiseDescriptorLimit(to: 2048)
        let reactor = try Reactor(backend: .select)
        let high = fcntl(0, F_DUPFD, 1100)
        try #require(high >= 1024, "could not get a descriptor above FD_SETSIZE")
        defer { close(high) }
        final class Nothing: IOHandler {
            func readable() {}
            func writable() {}
            func hangup() {}
        }
        #expect(throws: ReactorError.descriptorTooLarge(fd: high, limit: 1024)) {
            try reactor.register(fd: high, interest: .read, handler: Nothing())
        }
        let error = ReactorError.descriptorTooLarge(fd: high, limit: 1024)
        #expect(error.description.contains("FD_SETSIZE"))
    }

    @Test func unknownBackendNameIsAClearError() {
        #expect(throws: ReactorError.unknownBackend("kqueue")) { try Reactor(backendName: "kqueue") }
    }

    @Test func listenerSurvivesDescriptorExhaustionWithoutSpinning() throws {
        let reactor = try Reactor(backend: .epoll)
        var accepted: [TCPConnection] = []
        let server = try TCPListener(reactor: reactor, address: loopback) { [unowned reactor] fd in
            if let connection = try? TCPConnection(reactor: reactor, fd: fd, handler: EchoHandler()) {
                accepted.append(connection)
            }
        }
        // Running a whole test process out of descriptors would break the tests beside this one, so accept(2)
        // is made to fail with EMFILE for 0.3 s; the listener must back off, not spin, and then recover.
        let exhaustedUntil = MonotonicClock.now() + 300_000_000
        server.acceptCall = { fd in
            if MonotonicClock.now() < exhaustedUntil {
                errno = EMFILE
                return -1
            }
            return TCPListener.systemAccept(fd)
        }
        var clients: [Int32] = []
        for _ in 0..<3 {
            let fd = try Socket.makeStream(for: loopback, nonBlocking: false)
            _ = address(port: server.port).withSockAddr { connect(fd, $0, $1) }
            clients.append(fd)
        }
        reactor.callLater(0.6) { reactor.stop() }
        try runUntilStopped(reactor)
        #expect(server.exhaustionCount >= 2)
        #expect(server.exhaustionCount <= 5)
        // Paused, not spinning: a few wake-ups per 100 ms back-off, not thousands.
        #expect(reactor.stats.iterations < 50)
        #expect(accepted.count == 3)
        for fd in clients { close(fd) }
    }

    /// An owner's pause made while the listener backs off from descriptor exhaustion (a connection cap reached
    /// meanwhile) outlasts the back-off: the retry does not resume accepting behind the owner's back; the owner's
    /// resume does.
    @Test func aPauseDuringTheExhaustionBackOffIsKept() throws {
        let reactor = try Reactor(backend: .epoll)
        var accepted: [Int32] = []
        let server = try TCPListener(reactor: reactor, address: loopback) { fd in accepted.append(fd) }
        defer { accepted.forEach { close($0) } }
        var failNext = true
        server.acceptCall = { fd in
            if failNext {
                failNext = false
                errno = EMFILE
                return -1
            }
            return TCPListener.systemAccept(fd)
        }
        server.exhaustionBackoff = 0.01
        let client = try Socket.makeStream(for: loopback, nonBlocking: false)
        defer { close(client) }
        _ = address(port: server.port).withSockAddr { connect(client, $0, $1) }
        var log: [String] = []
        func watch() {
            if server.exhaustionCount == 1 && log.isEmpty {
                log.append("backing off")
                server.pauseAccepting()
                // Well after the back-off's retry (0.01 s): still paused, nothing accepted.
                reactor.callLater(0.2) {
                    log.append(server.isAccepting ? "accepting" : "paused")
                    log.append("accepted \(accepted.count)")
                    server.resumeAccepting()
                }
            }
            if accepted.count == 1 {
                log.append("accepted after resume")
                reactor.stop()
                return
            }
            reactor.callLater(0.001) { watch() }
        }
        reactor.callSoon { watch() }
        try runUntilStopped(reactor)
        server.close()
        #expect(log == ["backing off", "paused", "accepted 0", "accepted after resume"])
    }
}

/// io_uring, where the kernel cannot give it, is refused in one line that names the reason.
@Suite("The io_uring backend's refusal")
struct IOUringRefusalTests {
    @Test(arguments: [(EPERM, "disabled"), (ENOSYS, "no io_uring"), (ENOTSUP, "Linux 6.1")])
    func anUnavailableRingSaysWhy(code: Int32, words: String) {
        let text = IOUringBackend.unavailable(errno: code).description
        #expect(text.hasPrefix("the io_uring reactor is not available: "))
        #expect(text.contains(words), "\(text)")
        #expect(!text.contains("\n"))
    }
}
