#if canImport(Glibc)
import Glibc
#endif
import CReactor
import Synchronization

/// A single-threaded event loop in the manner of Twisted's reactor: it waits on every registered descriptor at once
/// with the chosen backend, then dispatches ready events, due timers and calls posted from other threads.
///
/// Thread safety: while `run()` runs, everything except `execute(_:)` and `stop()` must run on the thread that
/// called it (debug builds check, as SwiftNIO's `assertInEventLoop` does); while it is not running, one thread at a
/// time may use it, which is how a server is built before the thread that runs it starts. That confinement, plus
/// the mutex around the cross-thread queue and the atomic lifecycle, is what makes the `@unchecked Sendable` sound. The loop's own arrays are marked @exclusivity(unchecked): confined to
/// this thread and never accessed in overlapping ways, they need no runtime exclusivity check on every event.
public final class Reactor: @unchecked Sendable {
    public let backendKind: BackendKind
    private let backend: any PollerBackend
    /// The backend's completion reads, when it has them (io_uring): TCP transports then receive by completions.
    let completionReads: (any CompletionReads)?

    /// Per-descriptor registration, indexed by descriptor number. The generation changes whenever a registration
    /// ends, so an event collected for an old registration is never delivered to a new one with the same number.
    private struct Slot {
        var handler: (any IOHandler)?
        var interest: Interest = .none
        var generation: UInt32 = 0
    }
    @exclusivity(unchecked) private var slots: [Slot] = []
    @exclusivity(unchecked) private var readyEvents: [ReadyEvent] = []
    @exclusivity(unchecked) private var readyGenerations: [UInt32] = []

    private let timers = TimerHeap()
    @exclusivity(unchecked) private var dueTimers: [TimerHandle] = []
    /// A deferred call. The struct is what keeps `callSoon` to one allocation: a bare closure stored in an array is
    /// re-wrapped to the array's generic form, a second allocation per call.
    private struct SoonCall {
        let run: () -> Void
    }
    @exclusivity(unchecked) private var soonCalls: [SoonCall] = []
    /// The calls being run, swapped with `soonCalls` each turn so neither array is reallocated.
    @exclusivity(unchecked) private var runningSoonCalls: [SoonCall] = []

    /// A call posted from another thread; a struct for the reason `SoonCall` is one.
    private struct PostedCall: Sendable {
        let run: @Sendable () -> Void
    }
    private let crossThreadQueue = Locked<[PostedCall]>([])
    /// The calls being run, swapped with the queue under its lock so neither array is reallocated.
    @exclusivity(unchecked) private var runningPostedCalls: [PostedCall] = []
    /// See `beforeEachWait`.
    private var beforeWait: (() -> Void)?
    private var waker: Waker!
    private var signalWatcher: SignalWatcher?

    private let lifecycle = Atomic<ReactorLifecycle>(.idle)
    /// The thread inside `run()` (its pthread_t), 0 when none: what `assertInLoop` compares with.
    private let loopThread = Atomic<UInt>(0)
    @exclusivity(unchecked) public private(set) var stats = ReactorStats()

    /// One read buffer for every transport on this loop: data is handed to handlers as a view into it, so a read
    /// allocates nothing.
    let readBuffer: UnsafeMutableRawBufferPointer

    /// Whether a wait gathers events as the `waitBatch` given at init asked (false without one, or where the
    /// backend or the kernel cannot).
    public let batchesWaits: Bool

    /// A supplied clock (tests); nil: the system's monotonic clock, read inline.
    private let clock: (any ReactorClock)?

    /// `clock`: a time source of the caller's (a test's manual clock). It is not tied to real time, so with one
    /// the loop never sleeps toward a timer: each `runOnce` polls, runs what is due by that clock, and returns.
    /// `receiveBuffers`: the provided-buffer ring of io_uring's completion reads (ignored by other backends).
    /// `waitBatch`: let each wait gather events before waking, where the backend can (see `WaitBatch`).
    public init(backend kind: BackendKind = .default, readBufferSize: Int = 64 * 1024,
                clock: (any ReactorClock)? = nil, receiveBuffers: ReceiveBufferRing = .standard,
                waitBatch: WaitBatch? = nil) throws(ReactorError) {
        _ = BrokenPipe.ignored
        self.clock = clock
        lastWake = clock?.now() ?? MonotonicClock.now()
        backendKind = kind
        backend = try makeBackend(kind, receiveBuffers: receiveBuffers, waitBatch: waitBatch)
        completionReads = backend as? any CompletionReads
        batchesWaits = backend.batchesWaits
        readBuffer = .allocate(byteCount: readBufferSize, alignment: 16)
        let waker = try Waker { [unowned self] in self.drainCrossThreadQueue() }
        self.waker = waker
        try register(fd: waker.fd, interest: .read, handler: waker)
    }

    public convenience init(backendName: String) throws(ReactorError) {
        try self.init(backend: BackendKind(name: backendName))
    }

    deinit {
        // Handlers still registered get a last word, so their sockets close and cycles through them break.
        let remaining = slots.compactMap(\.handler).filter { $0 !== waker && $0 !== signalWatcher }
        slots.removeAll()
        for handler in remaining { handler.reactorClosing() }
        signalWatcher?.close()
        waker.close()
        backend.close()
        readBuffer.deallocate()
    }

    // MARK: descriptors

    public func register(fd: Int32, interest: Interest, handler: any IOHandler) throws(ReactorError) {
        assertInLoop()
        let index = Int(fd)
        if index >= slots.count { slots.append(contentsOf: repeatElement(Slot(), count: index + 1 - slots.count + 64)) }
        precondition(slots[index].handler == nil, "descriptor \(fd) is already registered")
        try backend.add(fd: fd, interest: interest)
        slots[index].handler = handler
        slots[index].interest = interest
        stats.registeredDescriptors += 1
    }

    /// Hands a registered descriptor to another handler (a connector to its connection) with one interest change,
    /// rather than an unregister and a register. Events already collected for the old handler are dropped.
    public func reassign(fd: Int32, interest: Interest, to handler: any IOHandler) throws(ReactorError) {
        assertInLoop()
        let index = Int(fd)
        precondition(index < slots.count && slots[index].handler != nil, "descriptor \(fd) is not registered")
        if slots[index].interest != interest {
            try backend.modify(fd: fd, interest: interest)
            slots[index].interest = interest
        }
        slots[index].handler = handler
        slots[index].generation &+= 1
    }

    public func setInterest(fd: Int32, _ interest: Interest) throws(ReactorError) {
        assertInLoop()
        let index = Int(fd)
        guard index < slots.count, slots[index].handler != nil, slots[index].interest != interest else { return }
        try backend.modify(fd: fd, interest: interest)
        slots[index].interest = interest
    }

    /// Forget a descriptor. Call before closing it: events already collected for it in this iteration are dropped.
    /// Stops watching `fd`. `closing`: the caller closes it right after, which lets epoll skip a system call.
    public func unregister(fd: Int32, closing: Bool = false) {
        assertInLoop()
        let index = Int(fd)
        guard index < slots.count, slots[index].handler != nil else { return }
        if closing {
            backend.removeClosing(fd: fd)
        } else {
            backend.remove(fd: fd)
        }
        slots[index].handler = nil
        slots[index].interest = .none
        slots[index].generation &+= 1
        stats.registeredDescriptors -= 1
    }

    // MARK: timers and calls

    /// Calls `callback` on the loop after `seconds` (monotonic clock).
    @discardableResult
    public func callLater(_ seconds: Double, _ callback: @escaping () -> Void) -> TimerHandle {
        assertInLoop()
        return timers.schedule(at: readClock() &+ MonotonicClock.nanoseconds(fromSeconds: seconds), callback)
    }

    /// Calls `callback` on the loop once the monotonic clock reaches `deadline` (nanoseconds). Pacing by deadline
    /// rather than by delay keeps a periodic sender from drifting as load grows.
    @discardableResult
    public func callAt(deadline: UInt64, _ callback: @escaping () -> Void) -> TimerHandle {
        assertInLoop()
        return timers.schedule(at: deadline, callback)
    }

    public var pendingTimers: Int { timers.count }

    /// Runs `callback` each time the loop is about to wait for descriptors, after the timers and deferred calls of
    /// the turn: for work that should be gathered over a turn and done once, such as output to a terminal or file
    /// written in one system call rather than one per line. Replaces any earlier callback.
    public func beforeEachWait(_ callback: @escaping () -> Void) {
        assertInLoop()
        beforeWait = callback
    }

    /// Runs `callback` on the loop's next iteration, never re-entrantly inside the caller.
    public func callSoon(_ callback: @escaping () -> Void) {
        assertInLoop()
        soonCalls.append(SoonCall(run: callback))
    }

    /// Runs `work` on the loop thread. Safe from any thread; wakes the loop if it is waiting.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        let wasEmpty = crossThreadQueue.withLock { queue in
            queue.append(PostedCall(run: work))
            return queue.count == 1
        }
        // One wake-up is enough for everything queued before the loop drains.
        if wasEmpty { Waker.signal(waker.fd) }
    }

    /// Drops the calls posted with `execute` and not yet run, for an owner whose loop has stopped for good: what
    /// they captured (often a connection, and through it this reactor) is released instead of kept in a cycle.
    public func discardPostedCalls() {
        precondition(!isRunning, "discardPostedCalls while the loop runs")
        crossThreadQueue.withLock { $0.removeAll() }
    }

    private func drainCrossThreadQueue() {
        // The emptied array of the last drain goes back under the lock in exchange for the queued calls.
        crossThreadQueue.withLock { queue in swap(&queue, &runningPostedCalls) }
        for index in runningPostedCalls.indices { runningPostedCalls[index].run() }
        stats.crossThreadCalls &+= UInt64(runningPostedCalls.count)
        runningPostedCalls.removeAll(keepingCapacity: true)
    }

    // MARK: signals

    /// The signals a program stops in order on: interrupt, terminate, and hang-up (a closed terminal or a
    /// service manager's stop), which would otherwise kill it mid-write. A signal the program was started with
    /// ignored stays ignored: `nohup poetry gateway &` asks to outlive the terminal, so its hang-up is not a stop.
    public static var stopSignals: [Int32] {
        [SIGINT, SIGTERM, SIGHUP].filter { !isIgnored($0) }
    }

    /// Whether `signal`'s disposition is SIG_IGN now (as inherited across exec); asked, not changed.
    private static func isIgnored(_ signal: Int32) -> Bool {
        var current = sigaction()
        guard sigaction(signal, nil, &current) == 0 else { return false }
        // SIG_IGN is the handler "address" 1; a C function pointer has no equality in Swift, its bits do.
        return unsafeBitCast(current.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
    }

    /// Delivers `stopSignals` (or the given signals) to `handler` on the loop thread instead of killing the
    /// process.
    public func onSignals(_ signals: [Int32] = Reactor.stopSignals, _ handler: @escaping (Int32) -> Void) throws(ReactorError) {
        assertInLoop()
        if let old = signalWatcher {
            // Unregistered before it is closed, as every descriptor must be: its number may be reused at once.
            unregister(fd: old.fd, closing: true)
            old.close()
            signalWatcher = nil
        }
        let watcher = try SignalWatcher(signals: signals, onSignal: handler)
        try register(fd: watcher.fd, interest: .read, handler: watcher)
        signalWatcher = watcher
    }

    // MARK: running

    /// Runs until `stop()`. Returns after the iteration in which stop was requested, or at once when `stop()` came
    /// before this call (a stop is never lost: a signal handler may well run before the loop starts).
    public func run() throws(ReactorError) {
        moveState(.run)
        loopThread.store(UInt(pthread_self()), ordering: .relaxed)
        defer {
            loopThread.store(0, ordering: .relaxed)
            moveState(.returned)
        }
        while lifecycle.load(ordering: .acquiring) != .stopping {
            try runOnce()
        }
    }

    /// Asks the loop to return from `run()`, or, before `run()`, to return from it at once. Safe from any thread.
    public func stop() {
        moveState(.stop)
        Waker.signal(waker.fd)
    }

    /// Whether `run()` is running and no stop has been asked.
    public var isRunning: Bool { lifecycle.load(ordering: .acquiring) == .running }

    private func moveState(_ event: ReactorLifecycle.Event) {
        var current = lifecycle.load(ordering: .relaxed)
        while true {
            guard let next = current.next(on: event) else {
                preconditionFailure("reactor: illegal lifecycle move \(event) while \(current)")
            }
            let (exchanged, original) = lifecycle.compareExchange(expected: current, desired: next, ordering: .acquiringAndReleasing)
            if exchanged { return }
            current = original
        }
    }

    /// Traps in debug builds when called off the loop thread while the loop runs; compiled out of release builds.
    /// Reactor-confined objects call it at their entry points.
    @inline(__always)
    public func assertInLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(isOnLoopThreadOrIdle, "reactor used off its loop thread", file: file, line: line)
    }

    private var isOnLoopThreadOrIdle: Bool {
        let owner = loopThread.load(ordering: .relaxed)
        return owner == 0 || owner == UInt(pthread_self())
    }

    /// One iteration: run due timers and deferred calls, wait, dispatch.
    /// When the loop last woke from waiting: a clock reading shared by everything dispatched in this turn, for
    /// deadlines measured in seconds (such as a connection's timeouts) that need no fresher time.
    public var wokeAt: UInt64 {
        // Not inlined into other modules: there the access would carry a runtime exclusivity check again.
        @inline(never) get { lastWake }
    }
    @exclusivity(unchecked) private var lastWake: UInt64

    /// The time now, by this reactor's clock. Deadlines compared with timer times must be read here.
    public var now: UInt64 { readClock() }

    @inline(__always)
    private func readClock() -> UInt64 {
        if let clock { return clock.now() }
        return MonotonicClock.now()
    }

    public func runOnce() throws(ReactorError) {
        var start = readClock()
        runDueTimers(now: start)
        runSoonCalls()
        beforeWait?()
        completionReads?.submitStagedSends()

        let timeout = clock == nil ? waitTimeout(now: readClock()) : 0
        let beforeWait = readClock()
        stats.busyNanoseconds &+= beforeWait &- start
        readyEvents.removeAll(keepingCapacity: true)
        try backend.wait(timeoutMilliseconds: timeout, into: &readyEvents)
        start = readClock()
        lastWake = start
        stats.blockedNanoseconds &+= start &- beforeWait
        stats.iterations &+= 1

        dispatchReadyEvents()
        if let completionReads { stats.eventsDispatched &+= UInt64(completionReads.dispatchCompletions()) }
        stats.busyNanoseconds &+= readClock() &- start
    }

    private func waitTimeout(now: UInt64) -> Int32 {
        if !soonCalls.isEmpty || lifecycle.load(ordering: .relaxed) == .stopping { return 0 }
        guard let deadline = timers.earliestDeadline else { return -1 }
        guard deadline > now else { return 0 }
        // Round up: waking a little late is harmless, waking early would spin until the deadline.
        let milliseconds = (deadline - now + 999_999) / 1_000_000
        return Int32(min(milliseconds, UInt64(Int32.max)))
    }

    private func runDueTimers(now: UInt64) {
        timers.popDue(now: now, into: &dueTimers)
        guard !dueTimers.isEmpty else { return }
        for timer in dueTimers {
            guard let callback = timer.callback else { continue }  // cancelled by an earlier timer in this batch
            timer.callback = nil
            stats.timersFired &+= 1
            callback()
        }
        dueTimers.removeAll(keepingCapacity: true)
    }

    private func runSoonCalls() {
        guard !soonCalls.isEmpty else { return }
        // Calls made by these calls land in the other array and wait for the next turn. Swapping, rather than
        // copying and clearing, keeps both buffers: clearing a buffer still shared with a copy allocates a new one.
        swap(&soonCalls, &runningSoonCalls)
        for index in runningSoonCalls.indices { runningSoonCalls[index].run() }
        runningSoonCalls.removeAll(keepingCapacity: true)
    }

    private func dispatchReadyEvents() {
        let count = readyEvents.count
        guard count > 0 else { return }
        // Snapshot generations before any handler runs; a handler may close and reuse a descriptor number.
        readyGenerations.removeAll(keepingCapacity: true)
        for event in readyEvents { readyGenerations.append(slots[Int(event.fd)].generation) }

        for index in 0..<count {
            let event = readyEvents[index]
            let fdIndex = Int(event.fd)
            let generation = readyGenerations[index]
            guard slots[fdIndex].generation == generation, let handler = slots[fdIndex].handler else { continue }
            stats.eventsDispatched &+= 1
            let failed = !event.events.isDisjoint(with: [.hangup, .error])
            var delivered = false
            // Masked by the interest as it is now: an earlier handler may have paused this one.
            if slots[fdIndex].interest.contains(.read) && (event.events.contains(.read) || failed) {
                delivered = true
                handler.readable()
            }
            guard slots[fdIndex].generation == generation else { continue }
            if slots[fdIndex].interest.contains(.write) && (event.events.contains(.write) || failed) {
                delivered = true
                handler.writable()
            }
            if failed && !delivered && slots[fdIndex].generation == generation {
                handler.hangup()
            }
        }
    }
}
