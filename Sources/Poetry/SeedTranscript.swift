/// Turns fetch events into the lines the seed's clients print. The CLI prints them and the gateway's `text/plain`
/// stream sends them, so both say exactly the same thing.
public struct SeedTranscript {
    public let mode: FetchMode
    // Indexed by task number (tasks are numbered 1...n): no hashing per event.
    private var addresses: [String] = []
    private var received: [Int] = []
    private var taskStarts: [Double] = []

    public init(mode: FetchMode) {
        self.mode = mode
    }

    /// The lines for `event` (often none). Keeps what it needs for later lines, such as per-task totals.
    public mutating func lines(for event: FetchEvent) -> [String] {
        switch event {
        case .started(_, let tasks):
            let count = (tasks.map(\.number).max() ?? 0) + 1
            addresses = Array(repeating: "?", count: count)
            received = Array(repeating: 0, count: count)
            taskStarts = Array(repeating: 0, count: count)
            for task in tasks { addresses[task.number] = task.address.description }
            return []
        case .connecting(let task, let t):
            if task < taskStarts.count { taskStarts[task] = t }
            return mode != .async ? ["Task \(task): get poetry from: \(address(task))"] : []
        case .connected, .wakeup, .blocked:
            return []
        case .received(let task, let bytes, let total, _):
            if task < received.count { received[task] = total }
            return mode == .async ? ["Task \(task): got \(bytes) bytes of poetry from \(address(task))"] : []
        case .finished(let task, let bytes, _, let t):
            if task < received.count { received[task] = bytes }
            switch mode {
            case .blocking, .threaded:
                let elapsed = t - (task < taskStarts.count ? taskStarts[task] : 0)
                return ["Task \(task): got \(bytes) bytes of poetry from \(address(task)) in \(formatTimedelta(elapsed))"]
            case .async:
                return ["Task \(task) finished"]
            }
        case .failed(let task, let reason, _):
            return ["Task \(task): failed: \(reason)"]
        case .summary(let poems, let failed, let elapsed):
            var lines: [String] = []
            if mode == .async {
                for task in 1..<max(1, received.count) { lines.append("Task \(task): \(received[task]) bytes of poetry") }
            }
            // "poems" even for one, as the seed prints it.
            var last = "Got \(poems) poems in \(formatTimedelta(elapsed))"
            if failed > 0 { last += "; \(failed) task\(failed == 1 ? "" : "s") failed" }
            lines.append(last)
            return lines
        }
    }

    private func address(_ task: Int) -> String { task < addresses.count ? addresses[task] : "?" }
}
