#if canImport(Glibc)
import Glibc
#endif
import HTTP1
import HTTPServer
import Poetry
import Reactor

/// One `/api/fetch` stream: runs the fetch and writes each event to the caller the moment it happens.
///
/// A slow reader never makes the gateway buffer without bound: while the client is behind, data events are merged
/// per task (bytes summed, latest total kept), so what waits is O(tasks); connected, done, failed and summary are
/// never dropped. What a task keeps of its poem is capped (`--max-poem-bytes`), so a `done` event's text is too.
/// A caller who hangs up cancels the fetch and closes its sockets.
final class FetchSession {
    let id: Int
    let mode: FetchMode
    /// Threads the fetch holds while it runs (counted against --max-blocking-fetches).
    let threads: Int
    /// Sockets it holds at once, counted against the gateway's fetch socket budget.
    let sockets: Int
    private let writer: HTTPResponseWriter
    private var encoder: FetchEventEncoder
    private let metrics: Metrics
    private let onEnd: (FetchSession) -> Void
    private var out: [UInt8] = []
    private var asyncFetch: AsyncFetch?
    private var blockingControl: BlockingFetchControl?
    private var threadedControl: ThreadedFetchControl?
    private var ended = false
    /// When the fetch started, on the monotonic clock: events carry `t` relative to (just after) it.
    private var startedAt: UInt64 = 0

    /// Merged data events waiting for the client to catch up, by task.
    private var pendingData: [Int: (bytes: Int, received: Int, t: Double)] = [:]
    private var pendingOrder: [Int] = []

    init(id: Int, mode: FetchMode, threads: Int, sockets: Int, format: FetchFormat, writer: HTTPResponseWriter, metrics: Metrics,
         onEnd: @escaping (FetchSession) -> Void) {
        self.id = id
        self.mode = mode
        self.threads = threads
        self.sockets = sockets
        self.writer = writer
        self.metrics = metrics
        self.onEnd = onEnd
        encoder = FetchEventEncoder(format: format, mode: mode, fetchID: id)
        out.reserveCapacity(4096)
    }

    func start(tasks: [FetchTask], timeout: Double, limits: FetchLimits, textBudget: PoemTextBudget, reactor: Reactor) {
        metrics.activeFetches += 1
        metrics.fetchesStarted += 1
        writer.onClientGone = { [weak self] in self?.clientGone() }
        writer.onWritabilityChanged = { [weak self] writable in
            if writable { self?.flushPendingData() }
        }
        var headers = HTTPHeaders([("Content-Type", encoder.format.contentType), ("Cache-Control", "no-cache"),
                                   ("X-Accel-Buffering", "no")])
        headers.add("X-Fetch-Id", String(id))
        writer.startStream(status: .ok, headers: headers)
        startedAt = MonotonicClock.now()
        switch mode {
        case .async:
            let fetch = AsyncFetch(reactor: reactor, tasks: tasks, timeout: timeout, limits: limits, textBudget: textBudget) { [weak self] event in
                self?.handle(event)
            }
            asyncFetch = fetch
            fetch.start()
        case .blocking:
            let control = BlockingFetchControl()
            blockingControl = control
            // The worker blocks on its sockets, as the seed's client does; each event hops to the reactor thread.
            let box = LoopConfined(self)
            WorkerThread.start(name: "fetch-\(id)") {
                BlockingFetch.run(tasks: tasks, timeout: timeout, limits: limits, control: control) { event in
                    reactor.execute { box.value.handle(event) }
                }
            }
        case .threaded:
            let control = ThreadedFetchControl()
            threadedControl = control
            // One thread per task; ThreadedFetch posts events one at a time, so they reach the reactor in order.
            let box = LoopConfined(self)
            ThreadedFetch.start(tasks: tasks, timeout: timeout, limits: limits, control: control) { event in
                reactor.execute { box.value.handle(event) }
            }
        }
    }

    func handle(_ event: FetchEvent) {
        guard !ended else { return }
        if case .received(let task, let bytes, let received, let t) = event {
            metrics.poetryBytesReceived += bytes
            if !writer.isWritable || !pendingData.isEmpty {
                merge(task: task, bytes: bytes, received: received, t: t)
                if writer.isWritable { flushPendingData() }
                return
            }
        } else if event.isLoopView {
            // What the loop and threads did is for watching: a client that is behind misses some of it rather
            // than making the gateway hold it (what waits stays O(tasks)).
            if !writer.isWritable || !pendingData.isEmpty { return }
        } else if let task = event.task {
            flushPendingData(task: task)
        }
        send(event)
        if case .summary = event { end(cancelled: false) }
    }

    private func send(_ event: FetchEvent) {
        out.removeAll(keepingCapacity: true)
        if case .finished(let task, let bytes, let poem, let t) = event, !poem.isEmpty, !writer.isWritable {
            // A client that is behind gets the event without the text: a poem escaped for JSON can be six times its
            // bytes, and a fetch's `done` events would otherwise pile up in its buffer whole.
            encoder.encode(.finished(task: task, bytes: bytes, poem: [], t: t), into: &out)
        } else {
            encoder.encode(event, into: &out)
        }
        if !out.isEmpty { writer.write(out) }
        if case .received(_, _, _, let t) = event {
            let happened = startedAt &+ MonotonicClock.nanoseconds(fromSeconds: t)
            let now = MonotonicClock.now()
            metrics.eventDelay.record(nanoseconds: now > happened ? now - happened : 0)
        }
    }

    private func merge(task: Int, bytes: Int, received: Int, t: Double) {
        if let existing = pendingData[task] {
            pendingData[task] = (existing.bytes + bytes, received, t)
        } else {
            pendingData[task] = (bytes, received, t)
            pendingOrder.append(task)
        }
    }

    private func flushPendingData(task only: Int? = nil) {
        guard !pendingData.isEmpty else { return }
        let tasks = only.map { [$0] } ?? pendingOrder
        for task in tasks {
            guard let data = pendingData.removeValue(forKey: task) else { continue }
            send(.received(task: task, bytes: data.bytes, received: data.received, t: data.t))
        }
        pendingOrder.removeAll { pendingData[$0] == nil }
    }

    /// The gateway is stopping: say so, end the stream, stop the fetch.
    func shutdown() {
        guard !ended else { return }
        flushPendingData()
        out.removeAll(keepingCapacity: true)
        encoder.encodeShutdown(into: &out)
        writer.write(out)
        stopFetch()
        end(cancelled: true)
    }

    private func clientGone() {
        guard !ended else { return }
        stopFetch()
        end(cancelled: true)
    }

    private func stopFetch() {
        asyncFetch?.cancel()
        blockingControl?.cancel()
        threadedControl?.cancel()
    }

    private func end(cancelled: Bool) {
        guard !ended else { return }
        ended = true
        asyncFetch = nil
        metrics.activeFetches -= 1
        if cancelled { metrics.fetchesCancelled += 1 }
        writer.finish()
        onEnd(self)
    }
}
