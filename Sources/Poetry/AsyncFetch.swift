import Reactor

/// The seed's async client on the reactor: connects to every server at once and reports each read as it happens.
/// Lives on the reactor thread; `observer` is called there.
public final class AsyncFetch {
    public let tasks: [FetchTask]
    private let reactor: Reactor
    private let timeout: Double?
    let limits: FetchLimits
    /// Whether `.finished` carries the poem's bytes (false: only its length, and no per-task buffer).
    let keepPoems: Bool
    /// Shared by every fetch of the process, if given: what all tasks together may keep of their poems.
    let textBudget: PoemTextBudget?
    private let observer: (FetchEvent) -> Void
    private var receivers: [PoemReceiver] = []
    private var startTime: UInt64 = 0
    private var remaining = 0
    private var poems = 0
    private var failures = 0
    public private(set) var isFinished = false

    // The wake-up being tallied (see `noteActivity`): which reactor iteration, when the loop woke, how many of
    // this fetch's sockets had events in it and how many bytes they read; and when the previous one ended.
    private var wakeIteration: UInt64 = .max
    private var wakeAt: UInt64 = 0
    private var wakeReady = 0
    private var wakeBytes = 0
    private var lastActivity: UInt64 = 0
    private var previousWakeEnd: UInt64 = 0

    /// `timeout`: a task that connects or receives nothing for this many seconds fails ("stalled"); `limits`: what
    /// one task may take in bytes and time in all.
    public init(reactor: Reactor, tasks: [FetchTask], timeout: Double? = nil, limits: FetchLimits = FetchLimits(),
                keepPoems: Bool = true, textBudget: PoemTextBudget? = nil, observer: @escaping (FetchEvent) -> Void) {
        self.reactor = reactor
        self.tasks = tasks
        self.timeout = timeout
        self.limits = limits
        self.keepPoems = keepPoems
        self.textBudget = textBudget
        self.observer = observer
    }

    public func start() {
        startTime = MonotonicClock.now()
        previousWakeEnd = startTime
        remaining = tasks.count
        observer(.started(mode: .async, tasks: tasks))
        guard !tasks.isEmpty else {
            finish()
            return
        }
        for task in tasks {
            let receiver = PoemReceiver(task: task.number, fetch: self, fallback: task.fallback)
            receivers.append(receiver)
            observer(.connecting(task: task.number, t: elapsed()))
            // Nagle's algorithm only matters to writers; these sockets only read.
            receiver.connector = TCPConnection.connect(reactor: reactor, to: task.address, timeout: timeout, noDelay: false, handler: receiver)
            receiver.watchForStall(reactor: reactor, timeout: timeout)
            receiver.watchDeadline(reactor: reactor, limits: limits)
        }
    }

    /// Stops every task at once, closing their sockets; no further events are reported.
    public func cancel() {
        guard !isFinished else { return }
        isFinished = true
        for receiver in receivers { receiver.stop() }
        receivers.removeAll()
    }

    /// A callback for one of this fetch's sockets ran (connected, read, closed). Callbacks in the same reactor
    /// iteration belong to one wake-up; a new iteration reports the previous one. Counters only: nothing allocated.
    func noteActivity(_ receiver: PoemReceiver, bytes: Int, at now: UInt64 = MonotonicClock.now()) {
        let iteration = reactor.stats.iterations
        if iteration != wakeIteration {
            reportWakeup()
            wakeIteration = iteration
            wakeAt = max(reactor.wokeAt, previousWakeEnd)
        }
        if receiver.lastIteration != iteration {
            receiver.lastIteration = iteration
            wakeReady += 1
        }
        wakeBytes += bytes
        lastActivity = now
    }

    private func reportWakeup() {
        guard wakeIteration != .max, !isFinished else { return }
        let event = FetchEvent.wakeup(ready: wakeReady, bytes: wakeBytes, t: seconds(since: wakeAt),
                                      slept: MonotonicClock.seconds(fromNanoseconds: wakeAt &- previousWakeEnd))
        previousWakeEnd = max(lastActivity, wakeAt)
        wakeIteration = .max
        wakeReady = 0
        wakeBytes = 0
        observer(event)
    }

    private func seconds(since instant: UInt64) -> Double {
        MonotonicClock.seconds(fromNanoseconds: instant &- startTime)
    }

    /// Connects `receiver` to its task's other address, once the first refused.
    func connect(_ receiver: PoemReceiver, to address: SocketAddress) {
        receiver.connector = TCPConnection.connect(reactor: reactor, to: address, timeout: timeout, noDelay: false, handler: receiver)
    }

    func elapsed(at now: UInt64 = MonotonicClock.now()) -> Double {
        MonotonicClock.seconds(fromNanoseconds: now &- startTime)
    }

    fileprivate func report(_ event: FetchEvent) {
        guard !isFinished else { return }
        observer(event)
        switch event {
        case .finished:
            poems += 1
            taskEnded()
        case .failed:
            failures += 1
            taskEnded()
        default:
            break
        }
    }

    private func taskEnded() {
        remaining -= 1
        if remaining == 0 { finish() }
    }

    private func finish() {
        reportWakeup()
        isFinished = true
        receivers.removeAll()
        observer(.summary(poems: poems, failed: failures, elapsed: elapsed()))
    }
}

/// One task's connection: collects the poem's bytes and says what happened.
final class PoemReceiver: ConnectionHandler {
    let task: Int
    /// Weak: a cancelled fetch may be gone while its sockets' last callbacks are still on their way.
    weak var fetch: AsyncFetch?
    var connector: TCPConnector?
    private var connection: TCPConnection?
    private var poem: [UInt8] = []
    private var received = 0
    private var done = false
    private var lastActivity = MonotonicClock.now()
    private var stallTimer: TimerHandle?
    private var deadlineTimer: TimerHandle?
    /// The reactor iteration of this socket's last callback: a socket counts once per wake-up.
    var lastIteration: UInt64 = .max

    /// The task's other address, until it has been tried.
    private var fallback: SocketAddress?

    init(task: Int, fetch: AsyncFetch, fallback: SocketAddress?) {
        self.task = task
        self.fetch = fetch
        self.fallback = fallback
        textBudget = fetch.textBudget
    }

    /// Held here, not reached through the fetch, so what this task kept goes back even after the fetch is gone.
    private let textBudget: PoemTextBudget?

    deinit {
        textBudget?.release(poem.count)
    }

    // The timers hold their receiver strongly, not weakly: a weak reference gives an object a side table for its
    // reference counts, and every retain of it (one per read event, by the transport calling its handler) then
    // takes the slow path. The cycle (receiver, timer, closure) ends when the timer fires or is cancelled, which
    // `end` and `stop` do, and a fetch dropped without either lets go of it at the timer's deadline.

    /// One timer per task, re-armed only when it fires early: no timer churn per chunk.
    func watchForStall(reactor: Reactor, timeout: Double?) {
        guard let timeout, timeout > 0 else { return }
        let limit = MonotonicClock.nanoseconds(fromSeconds: timeout)
        stallTimer = reactor.callAt(deadline: lastActivity &+ limit) { [self] in
            guard !self.done, let fetch = self.fetch else { return }
            let idle = MonotonicClock.now() &- self.lastActivity
            if idle >= limit {
                self.end(.failed(task: self.task, reason: "Timed out: no data for \(formatSeconds(timeout))", t: fetch.elapsed()))
                self.connection?.abort()
                self.connector?.cancel()
            } else {
                self.watchForStall(reactor: reactor, timeout: timeout)
            }
        }
    }

    /// The whole task's time: a target that trickles just often enough to dodge the stall timer still ends.
    func watchDeadline(reactor: Reactor, limits: FetchLimits) {
        guard let deadline = limits.deadline, deadline > 0 else { return }
        deadlineTimer = reactor.callLater(deadline) { [self] in
            guard !self.done, let fetch = self.fetch else { return }
            self.end(.failed(task: self.task, reason: limits.deadlineMessage, t: fetch.elapsed()))
            self.connection?.abort()
            self.connector?.cancel()
        }
    }

    func stop() {
        if !done { releaseText() }
        done = true
        stallTimer?.cancel()
        deadlineTimer?.cancel()
        connector?.cancel()
        connection?.abort()
    }

    private func end(_ event: @autoclosure () -> FetchEvent) {
        guard !done else { return }
        done = true
        stallTimer?.cancel()
        deadlineTimer?.cancel()
        fetch?.report(event())
        // The observer has handled the event (encoded and written it) by now: the text goes back to the budget.
        releaseText()
    }

    /// Whether this task still keeps its text (false once the shared budget refused it).
    private var keepingText = true

    private func releaseText() {
        textBudget?.release(poem.count)
        poem = []
    }

    /// Seconds since the fetch started (only asked while the fetch is alive).
    private var now: Double { fetch?.elapsed() ?? 0 }

    func connectionMade(_ connection: TCPConnection) {
        self.connection = connection
        connector = nil
        guard !done, let fetch else {
            connection.abort()
            return
        }
        lastActivity = MonotonicClock.now()
        fetch.noteActivity(self, bytes: 0, at: lastActivity)
        fetch.report(.connected(task: task, t: fetch.elapsed()))
    }

    func dataReceived(_ bytes: UnsafeRawBufferPointer) {
        guard !done, let fetch else { return }
        lastActivity = MonotonicClock.now()
        fetch.noteActivity(self, bytes: bytes.count, at: lastActivity)
        if fetch.limits.exceeded(total: received, adding: bytes.count) {
            // Failed before keeping any of it: what a task holds never passes the cap.
            end(.failed(task: task, reason: fetch.limits.tooLongMessage, t: fetch.elapsed()))
            connection?.abort()
            return
        }
        received += bytes.count
        if fetch.keepPoems && keepingText {
            if textBudget?.reserve(bytes.count) ?? true {
                poem.append(contentsOf: bytes)
            } else {
                // The process holds all the poem text it may: this task's bytes are counted but not kept.
                keepingText = false
                releaseText()
            }
        }
        // The clock reading taken for this read serves its timestamp too: one clock call per read.
        fetch.report(.received(task: task, bytes: bytes.count, received: received, t: fetch.elapsed(at: lastActivity)))
    }

    func connectionLost(_ reason: ConnectionLossReason) {
        connection = nil
        if !done { fetch?.noteActivity(self, bytes: 0) }
        switch reason {
        case .done:
            end(.finished(task: task, bytes: received, poem: poem, t: now))
        case .reset where received > 0:
            end(.failed(task: task, reason: ConnectErrorText.cutShort(after: received), t: now))
        default:
            end(.failed(task: task, reason: reason.description, t: now))
        }
    }

    func connectionFailed(_ error: ConnectError) {
        connector = nil
        if error == .refused, let other = fallback, !done, let fetch {
            fallback = nil
            fetch.connect(self, to: other)
            return
        }
        if !done { fetch?.noteActivity(self, bytes: 0) }
        end(.failed(task: task, reason: error.description, t: now))
    }
}

/// `0.5s`, `2s`: seconds as a person writes them.
func formatSeconds(_ seconds: Double) -> String {
    seconds == seconds.rounded() ? "\(Int(seconds))s" : "\(seconds)s"
}
