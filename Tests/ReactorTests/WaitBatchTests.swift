#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import Reactor
import Testing

/// Whether this kernel's io_uring can wait for a batch (a free function: the suite's own static would be a circular
/// reference from its `@Suite` trait).
func kernelBatchesWaits() -> Bool {
    (try? IOUringBackend(receiveBuffers: ReceiveBufferRing(count: 4, size: 64), waitBatch: .fanOut))?.batchesWaits ?? false
}

/// io_uring's batched waits (Linux 6.12's `min_wait_usec`): a wait sleeps through events until its batch is in,
/// ends at the batch's delay with whatever came, never outlasts the loop's timeout, and does not spin when idle.
@Suite("io_uring batched waits", .enabled(if: kernelBatchesWaits(), "the kernel has no min_wait_usec (before 6.12)"))
struct WaitBatchTests {
    /// A backend with `count` socket pairs, a multishot receive armed on the first end of each.
    final class Pairs {
        let backend: IOUringBackend
        var pairs: [(Int32, Int32)] = []
        var recorders: [CompletionReadTests.ReceiveRecorder] = []

        init(_ count: Int, batch: WaitBatch?) throws {
            backend = try IOUringBackend(receiveBuffers: ReceiveBufferRing(count: 16, size: 1024), waitBatch: batch)
            for _ in 0..<count {
                var pair: [Int32] = [-1, -1]
                try #require(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
                pairs.append((pair[0], pair[1]))
                let recorder = CompletionReadTests.ReceiveRecorder()
                recorders.append(recorder)
                try backend.add(fd: pair[0], interest: [])
                backend.attachReceiver(fd: pair[0], recorder, accepting: false)
                try backend.receive(fd: pair[0])
            }
            var events: [ReadyEvent] = []
            try backend.wait(timeoutMilliseconds: 0, into: &events)
        }

        /// One wait of up to `timeout` ms; how many completions it brought and how long it took.
        func waitOnce(timeout: Int32) throws -> (completions: Int, seconds: Double) {
            var events: [ReadyEvent] = []
            let start = MonotonicClock.now()
            try backend.wait(timeoutMilliseconds: timeout, into: &events)
            let seconds = MonotonicClock.seconds(fromNanoseconds: MonotonicClock.now() &- start)
            return (backend.collectedCompletions, seconds)
        }

        /// Signalled when the writing thread is done: the descriptors are not closed under it (their numbers would
        /// be reused by a test running beside this one, which would then get these bytes).
        private let writerDone = DispatchSemaphore(value: 0)
        private var writing = false

        /// Writes a byte to each pair's other end from another thread, `spacing` seconds apart (after one such
        /// pause first): events that come one at a time, each of which would end an ordinary wait.
        func writeOneByOne(spacing: Double) {
            let ends = pairs.map(\.1)
            let done = writerDone
            writing = true
            Thread {
                for fd in ends {
                    Thread.sleep(forTimeInterval: spacing)
                    var byte: UInt8 = 1
                    _ = write(fd, &byte, 1)
                }
                done.signal()
            }.start()
        }

        deinit {
            if writing { writerDone.wait() }
            pairs.forEach { close($0.0); close($0.1) }
        }
    }

    /// Four receives completing 20 ms apart come back from one wait, not one each: the wait slept until its
    /// batch of four was in.
    @Test func aWaitSleepsThroughEventsUntilItsBatchIsIn() throws {
        let pairs = try Pairs(4, batch: WaitBatch(completions: 4, maxDelayMicroseconds: 10_000_000))
        pairs.writeOneByOne(spacing: 0.02)
        let first = try pairs.waitOnce(timeout: 30_000)
        #expect(first.completions == 4, "the wait woke before its batch was in")
        _ = pairs.backend.dispatchCompletions()
        #expect(pairs.recorders.allSatisfy { $0.bytes == [1] }, "\(pairs.recorders.map { ($0.bytes, $0.results) })")
    }

    /// The same without a batch: the first event ends the wait (what the test above tells apart).
    @Test func withoutABatchTheFirstEventEndsTheWait() throws {
        let pairs = try Pairs(4, batch: nil)
        #expect(!pairs.backend.batchesWaits)
        pairs.writeOneByOne(spacing: 0.1)
        let first = try pairs.waitOnce(timeout: 30_000)
        #expect(first.completions >= 1 && first.completions < 4)
    }

    /// What ends a wait whose batch does not fill, and no sooner: its delay, with the one completion there is
    /// (50 ms delay, 5 s timeout), or the loop's timeout (its next timer) when that comes first (5 s delay, 20 ms
    /// timeout), so timers are not held back. Neither runs to the other's end.
    @Test(arguments: [(delay: 50_000, timeout: Int32(5_000), written: 1, earliest: 0.045),
                      (delay: 5_000_000, timeout: Int32(20), written: 0, earliest: 0.015)])
    func anUnfilledBatchEndsAtItsDelayOrTheTimeoutWhicheverIsFirst(
        delay: Int, timeout: Int32, written: Int, earliest: Double
    ) throws {
        let pairs = try Pairs(1, batch: WaitBatch(completions: 64, maxDelayMicroseconds: delay))
        var byte: UInt8 = 1
        for _ in 0..<written { #expect(write(pairs.pairs[0].1, &byte, 1) == 1) }
        let wait = try pairs.waitOnce(timeout: timeout)
        #expect(wait.completions == written)
        #expect(wait.seconds >= earliest, "the wait ended before its delay or timeout")
        #expect(wait.seconds < 2.5, "the wait ran on past the earlier of its delay and its timeout")
    }

    /// With no timeout and nothing happening, the batch's delay does not end the wait empty-handed (which would
    /// turn an idle loop into one that wakes every delay): the wait lasts until the event that comes 200 ms later.
    @Test func anIdleWaitDoesNotWakeAtEveryDelay() throws {
        let pairs = try Pairs(1, batch: WaitBatch(completions: 64, maxDelayMicroseconds: 10_000))
        pairs.writeOneByOne(spacing: 0.2)
        let wait = try pairs.waitOnce(timeout: -1)
        #expect(wait.completions == 1, "the wait ended with nothing at the batch's delay")
    }

    /// Through the loop: a reactor asked for a batch says it batches, and one that was not asked does not.
    @Test func theReactorSaysWhetherItBatches() throws {
        #expect(try Reactor(backend: .ioUring, waitBatch: .fanOut).batchesWaits)
        #expect(try !Reactor(backend: .ioUring).batchesWaits)
        #expect(try !Reactor(backend: .epoll, waitBatch: .fanOut).batchesWaits)
        #expect(try !Reactor(backend: .ioUring, waitBatch: WaitBatch(completions: 64, maxDelayMicroseconds: 0)).batchesWaits)
    }
}
