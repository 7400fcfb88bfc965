#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// Part 1's threaded model: one thread per poem, each with a blocking socket, all at once. Each task runs exactly
/// the blocking client's per-task code (same events, limits and failure texts); a failure ends only its own task.
///
/// The observer is called from the tasks' threads but never from two at once (under one lock), in an order that
/// keeps each task's events in sequence; `summary` comes last, from whichever thread ends last.
public enum ThreadedFetch {
    /// Starts one thread per task and returns at once; `completion` runs (on the last thread) after the last event,
    /// or once every thread has stopped after `control.cancel()` (then with no summary).
    public static func start(tasks: [FetchTask], timeout: Double? = nil, limits: FetchLimits = FetchLimits(),
                             control: ThreadedFetchControl, observer: @escaping @Sendable (FetchEvent) -> Void,
                             completion: @escaping @Sendable () -> Void = {}) {
        let start = MonotonicClock.now()
        let elapsed: @Sendable () -> Double = { MonotonicClock.seconds(fromNanoseconds: MonotonicClock.now() &- start) }
        let shared = Shared(remaining: tasks.count, observer: observer)
        shared.report(.started(mode: .threaded, tasks: tasks))
        guard !tasks.isEmpty else {
            shared.report(.summary(poems: 0, failed: 0, elapsed: elapsed()))
            completion()
            return
        }
        let taskControls = control.prepare(count: tasks.count)
        // Every task starts now, so each says so before any thread can report how it went: the transcript's
        // "get poetry from" lines come first, in task order, as the blocking client's would.
        for task in tasks { shared.report(.connecting(task: task.number, t: elapsed())) }
        for (index, task) in tasks.enumerated() {
            let taskControl = taskControls[index]
            WorkerThread.start(name: "fetch-task-\(task.number)") {
                shared.taskRun(task, cancelled: { taskControl.isCancelled }) {
                    guard !taskControl.isCancelled else { return nil }
                    let outcome = BlockingFetch.fetchOne(task, timeout: timeout, limits: limits, control: taskControl,
                                                         elapsed: elapsed, observer: shared.report)
                    switch outcome {
                    case .success(let poem): return .finished(task: task.number, bytes: poem.count, poem: poem, t: elapsed())
                    case .failure(let reason): return .failed(task: task.number, reason: reason.text, t: elapsed())
                    }
                } ended: { poems, failures, last in
                    guard last else { return nil }
                    return control.isCancelled ? nil : .summary(poems: poems, failed: failures, elapsed: elapsed())
                } finally: { last in
                    if last { completion() }
                }
            }
        }
    }

    /// Runs the fetch and returns once every task has ended; the observer runs on the tasks' threads (serialized).
    public static func run(tasks: [FetchTask], timeout: Double? = nil, limits: FetchLimits = FetchLimits(),
                           control: ThreadedFetchControl = ThreadedFetchControl(),
                           observer: @escaping @Sendable (FetchEvent) -> Void) {
        var pipeEnds: [Int32] = [-1, -1]
        precondition(pipe(&pipeEnds) == 0, "pipe failed: \(errno)")
        let writeEnd = pipeEnds[1]
        start(tasks: tasks, timeout: timeout, limits: limits, control: control, observer: observer) {
            var byte: UInt8 = 1
            _ = write(writeEnd, &byte, 1)
        }
        // The last thread writes one byte once everything is reported.
        var byte: UInt8 = 0
        while read(pipeEnds[0], &byte, 1) < 0 && errno == EINTR {}
        close(pipeEnds[0])
        close(pipeEnds[1])
    }

    /// What the tasks' threads share: the observer (called under the lock) and the running tally.
    private final class Shared: Sendable {
        private struct Tally {
            var remaining: Int
            var poems = 0
            var failures = 0
        }
        /// `Locked` (pthread), not the standard library's `Mutex`, whose futex ThreadSanitizer does not model: two
        /// tasks ending together were reported as a race on the tally.
        private let tally: Locked<Tally>
        private let observer: @Sendable (FetchEvent) -> Void

        init(remaining: Int, observer: @escaping @Sendable (FetchEvent) -> Void) {
            tally = Locked(Tally(remaining: remaining))
            self.observer = observer
        }

        func report(_ event: FetchEvent) {
            tally.withLock { _ in observer(event) }
        }

        /// Runs one task, then reports its end and (for the last one) what `ended` makes of the totals, all under
        /// the lock so the summary can never overtake another task's last event.
        func taskRun(_ task: FetchTask, cancelled: () -> Bool, _ body: () -> FetchEvent?,
                     ended: (Int, Int, Bool) -> FetchEvent?, finally: (Bool) -> Void) {
            let outcome = body()
            let last = tally.withLock { tally in
                tally.remaining -= 1
                if let outcome, !cancelled() {
                    if case .finished = outcome { tally.poems += 1 } else { tally.failures += 1 }
                    observer(outcome)
                }
                let last = tally.remaining == 0
                if let summary = ended(tally.poems, tally.failures, last) { observer(summary) }
                return last
            }
            finally(last)
        }
    }
}
