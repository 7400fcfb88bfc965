import ArgumentParser
import Poetry
import Reactor

/// `poetry get`: the seed's clients. Blocking fetches one poem after another; async waits on every socket at once.
struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Fetch poems from slow poetry servers, blocking (one after another) or async (all at once).",
        discussion: "ADDRESS is PORT or HOST:PORT (HOST defaults to 127.0.0.1). Exits non-zero when any task failed."
    )

    @Flag(help: "One server after another, as the seed's blocking client (default: --async).")
    var blocking = false

    @Flag(name: .customLong("async"), help: "All servers at once on the reactor, as the seed's async client.")
    var asynchronous = false

    @Option(help: "Reactor backend for --async (select, poll, epoll).")
    var reactor: BackendKindArgument = .default

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
        guard !(blocking && asynchronous) else { throw ValidationError("Choose one of --blocking and --async.") }
        guard timeout > 0, timeout.isFinite else { throw ValidationError("--timeout must be a positive number of seconds.") }
        guard maxPoemBytes > 0 else { throw ValidationError("--max-poem-bytes must be positive.") }
        if let fetchDeadline, !(fetchDeadline > 0 && fetchDeadline.isFinite) {
            throw ValidationError("--fetch-deadline must be a positive number of seconds.")
        }
    }

    func run() throws {
        guard !addresses.isEmpty else {
            throw fail("Usage: poetry get [--blocking | --async] [options] ADDRESS...\nGive at least one ADDRESS (PORT or HOST:PORT); see poetry get --help.", status: ExitCode.validationFailure.rawValue)
        }
        let tasks: [FetchTask]
        do {
            // A comma-separated list counts as several addresses (as the gateway's targets= does), which keeps a
            // fan-out of thousands off the argument parser.
            tasks = try FetchTargets.parse(addresses.flatMap { $0.split(separator: ",").map(String.init) })
        } catch {
            throw fail(error.description, status: ExitCode.validationFailure.rawValue)
        }
        let mode: FetchMode = blocking ? .blocking : .async
        var interrupted = false
        let limits = FetchLimits(maxPoemBytes: maxPoemBytes, deadline: fetchDeadline)
        var transcript = SeedTranscript(mode: mode)
        var poems: [Int: [UInt8]] = [:]
        var anyFailed = false
        var (finishedCount, failedCount) = (0, 0)
        let quiet = self.quiet
        let printPoems = self.printPoems
        let observe: (FetchEvent) -> Void = { event in
            switch event {
            case .finished(let task, _, let poem, _):
                finishedCount += 1
                if printPoems { poems[task] = poem }
            case .failed:
                anyFailed = true
                failedCount += 1
            default: break
            }
            // The transcript sees every event (it keeps the per-task totals); --quiet only drops the per-read lines.
            let lines = transcript.lines(for: event)
            if quiet, case .received = event { return }
            for line in lines { Console.out(line) }
        }
        switch mode {
        case .blocking:
            BlockingFetch.run(tasks: tasks, timeout: timeout, limits: limits, observer: observe)
        case .async:
            let loop: Reactor
            do {
                loop = try Reactor(backend: reactor.kind)
            } catch {
                throw fail("\(error)")
            }
            let fetch = AsyncFetch(reactor: loop, tasks: tasks, timeout: timeout, limits: limits, keepPoems: printPoems) { event in
                observe(event)
                if case .summary = event { loop.stop() }
            }
            let startedAt = MonotonicClock.now()
            fetch.start()
            try loop.onSignals { _ in
                guard !fetch.isFinished else { return }
                // Ctrl-C: the totals so far and the summary, then exit 130 as an interrupted program does.
                fetch.cancel()
                interrupted = true
                let unfinished = tasks.count - finishedCount - failedCount
                observe(.summary(poems: finishedCount, failed: failedCount,
                                 elapsed: MonotonicClock.seconds(fromNanoseconds: MonotonicClock.now() &- startedAt)))
                Console.err("Interrupted: \(unfinished) task\(unfinished == 1 ? "" : "s") unfinished.")
                loop.stop()
            }
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
