import ArgumentParser
import Poetry
import Reactor

/// `poetry get`: the seed's clients. Blocking fetches one poem after another; async waits on every socket at once.
struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Fetch poems from slow poetry servers: blocking (one after another), threaded (a thread each) or async (all at once).",
        discussion: "ADDRESS is PORT or HOST:PORT (HOST defaults to 127.0.0.1). Exits non-zero when any task failed."
    )

    @Flag(help: "One server after another, as the seed's blocking client (default: --async).")
    var blocking = false

    @Flag(help: "One thread per server, each with a blocking socket, all at once (the tutorial's threaded model).")
    var threaded = false

    @Flag(name: .customLong("async"), help: "All servers at once on the reactor, as the seed's async client.")
    var asynchronous = false

    @Option(help: "Reactor backend for --async.")
    var reactor: BackendKindArgument = .default

    @Option(parsing: .unconditional, help: ArgumentHelp("--async on io_uring (Linux 6.12 or later): let a wait gather up to 64 reads for at most this many microseconds before the loop wakes (every event, a connect or Ctrl-C too, may be that late); 0: wake at the first read; at most 100000. (default: 1000)", valueName: "microseconds"))
    var batchWait: Int?

    @Option(parsing: .unconditional, help: "Fail a task that connects or receives nothing for this many seconds.")
    var timeout: Double = 10

    @Option(help: "Fail a task whose poem is longer than this many bytes.")
    var maxPoemBytes = FetchLimits.defaultMaxPoemBytes

    @Option(parsing: .unconditional, help: "Fail a task not finished this many seconds after it began (default: no deadline).")
    var fetchDeadline: Double?

    @Flag(help: "Print each poem's text after the report.")
    var printPoems = false

    @Flag(help: "Print only the per-task totals and the summary, not every read.")
    var quiet = false

    @Argument(help: "Servers to fetch from: PORT or HOST:PORT (a comma-separated list counts as several).")
    var addresses: [String] = []

    func validate() throws {
        guard [blocking, threaded, asynchronous].filter({ $0 }).count <= 1 else {
            throw ValidationError("Choose one of --blocking, --threaded and --async.")
        }
        guard timeout > 0, timeout.isFinite else { throw ValidationError("--timeout must be a positive number of seconds.") }
        guard maxPoemBytes > 0 else { throw ValidationError("--max-poem-bytes must be positive.") }
        if let batchWait, !(0...100_000).contains(batchWait) {
            throw ValidationError("--batch-wait must be 0 to 100000 microseconds.")
        }
        if let fetchDeadline, !(fetchDeadline > 0 && fetchDeadline.isFinite) {
            throw ValidationError("--fetch-deadline must be a positive number of seconds.")
        }
    }

    func run() throws {
        guard !addresses.isEmpty else {
            throw fail("Usage: poetry get [--blocking | --threaded | --async] [options] ADDRESS...\nGive at least one ADDRESS (PORT or HOST:PORT); see poetry get --help.", status: ExitCode.validationFailure.rawValue)
        }
        let tasks: [FetchTask]
        do {
            // A comma-separated list counts as several addresses (as the gateway's targets= does), which keeps a
            // fan-out of thousands off the argument parser.
            tasks = try FetchTargets.parse(addresses.flatMap { $0.split(separator: ",").map(String.init) })
        } catch {
            throw fail(error.description, status: ExitCode.validationFailure.rawValue)
        }
        let mode: FetchMode = blocking ? .blocking : threaded ? .threaded : .async
        var interrupted = false
        let limits = FetchLimits(maxPoemBytes: maxPoemBytes, deadline: fetchDeadline)
        var transcript = SeedTranscript(mode: mode)
        var poems: [Int: [UInt8]] = [:]
        var anyFailed = false
        var (finishedCount, failedCount) = (0, 0)
        var summarized = false
        let quiet = self.quiet
        let printPoems = self.printPoems
        let observe: (FetchEvent) -> Void = { event in
            switch event {
            case .summary: summarized = true
            case .finished(let task, _, let poem, _):
                finishedCount += 1
                if printPoems { poems[task] = poem }
            case .failed:
                anyFailed = true
                failedCount += 1
            default: break
            }
            // The transcript sees every event (it keeps the per-task totals); --quiet only drops the per-read lines.
            if quiet, case .received = event {
                _ = transcript.lines(for: event)
                return
            }
            Console.out { transcript.appendLines(for: event, to: &$0) }
        }
        let loop: Reactor
        do {
            // Thousands of sockets each delivering a little: one wake-up a batch of reads, not one a read.
            let batch = WaitBatch(completions: WaitBatch.fanOut.completions,
                                  maxDelayMicroseconds: batchWait ?? WaitBatch.fanOut.maxDelayMicroseconds)
            loop = try Reactor(backend: reactor.kind, waitBatch: mode == .async ? batch : nil)
        } catch {
            throw fail("\(error)")
        }
        if let batchWait, batchWait > 0, !loop.batchesWaits {
            // Asked for by name and not to be had: said once, then the fetch goes on with ordinary waits.
            Console.err("poetry: --batch-wait has no effect here (it needs --async, --reactor io_uring and Linux 6.12 or later).")
        }
        // A line per read, for thousands of sockets: gathered for a moment, written together.
        Console.gatherLines(on: loop)
        let startedAt = MonotonicClock.now()
        /// Ctrl-C (or SIGTERM, SIGHUP): cancel, print the totals so far and the summary, and exit 130 as an
        /// interrupted program does; in every mode alike.
        func interrupt(_ cancel: () -> Void) {
            guard !summarized else { return }
            cancel()
            interrupted = true
            let unfinished = tasks.count - finishedCount - failedCount
            observe(.summary(poems: finishedCount, failed: failedCount,
                             elapsed: MonotonicClock.seconds(fromNanoseconds: MonotonicClock.now() &- startedAt)))
            Console.err("Interrupted: \(unfinished) task\(unfinished == 1 ? "" : "s") unfinished.")
            loop.stop()
        }
        switch mode {
        case .blocking:
            // The fetch blocks a worker thread, as the seed's client blocks its program; this thread's loop prints
            // its events in order and turns a stop signal into an interruption.
            let control = BlockingFetchControl()
            let observer = LoopConfined(observe)
            let timeout = self.timeout
            // Watched before any work starts: a signal meanwhile is handled once the loop runs, not fatal.
            try loop.onSignals { _ in interrupt { control.cancel() } }
            WorkerThread.start(name: "get") {
                BlockingFetch.run(tasks: tasks, timeout: timeout, limits: limits, control: control) { event in
                    loop.execute { observer.value(event) }
                }
                // Posted after the events, so the loop prints every one of them before it stops.
                loop.execute { loop.stop() }
            }
            try loop.run()
        case .threaded:
            // One thread per poem; their events come here through the loop, which prints them in the order they
            // were reported and turns a stop signal into an interruption, as for the blocking client.
            let control = ThreadedFetchControl()
            let observer = LoopConfined(observe)
            try loop.onSignals { _ in interrupt { control.cancel() } }
            ThreadedFetch.start(tasks: tasks, timeout: timeout, limits: limits, control: control,
                                observer: { event in loop.execute { observer.value(event) } },
                                completion: { loop.execute { loop.stop() } })
            try loop.run()
        case .async:
            let fetch = AsyncFetch(reactor: loop, tasks: tasks, timeout: timeout, limits: limits, keepPoems: printPoems) { event in
                observe(event)
                if case .summary = event { loop.stop() }
            }
            try loop.onSignals { _ in interrupt { fetch.cancel() } }
            fetch.start()
            try loop.run()
        }
        if printPoems {
            for task in tasks {
                guard let poem = poems[task.number] else { continue }
                Console.out("\n--- Task \(task.number): \(task.address) ---")
                // Decoded once the poem is complete, so a character split across reads stays whole.
                Console.out(String(decoding: poem, as: UTF8.self))
            }
        }
        if interrupted { throw ExitCode(130) }
        if anyFailed { throw ExitCode(1) }
    }
}
