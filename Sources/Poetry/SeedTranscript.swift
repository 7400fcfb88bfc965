/// Turns fetch events into the lines the seed's clients print. The CLI prints them and the gateway's `text/plain`
/// stream sends them, so both say exactly the same thing.
public struct SeedTranscript {
    public let mode: FetchMode
    private var addresses: [Int: String] = [:]
    private var order: [Int] = []
    private var received: [Int: Int] = [:]
    private var taskStarts: [Int: Double] = [:]

    public init(mode: FetchMode) {
        self.mode = mode
    }

    /// The lines for `event` (often none). Keeps what it needs for later lines, such as per-task totals.
    public mutating func lines(for event: FetchEvent) -> [String] {
        switch event {
        case .started(_, let tasks):
            for task in tasks {
                addresses[task.number] = task.address.description
                order.append(task.number)
                received[task.number] = 0
            }
            return []
        case .connecting(let task, let t):
            taskStarts[task] = t
            return mode == .blocking ? ["Task \(task): get poetry from: \(address(task))"] : []
        case .connected:
            return []
        case .received(let task, let bytes, let total, _):
            received[task] = total
            return mode == .async ? ["Task \(task): got \(bytes) bytes of poetry from \(address(task))"] : []
        case .finished(let task, let poem, let t):
            received[task] = poem.count
            switch mode {
            case .blocking:
                let elapsed = t - (taskStarts[task] ?? 0)
                return ["Task \(task): got \(poem.count) bytes of poetry from \(address(task)) in \(formatTimedelta(elapsed))"]
            case .async:
                return ["Task \(task) finished"]
            }
        case .failed(let task, let reason, _):
            return ["Task \(task): failed: \(reason)"]
        case .summary(let poems, let failed, let elapsed):
            var lines: [String] = []
            if mode == .async {
                for task in order { lines.append("Task \(task): \(received[task] ?? 0) bytes of poetry") }
            }
            // "poems" even for one, as the seed prints it.
            var last = "Got \(poems) poems in \(formatTimedelta(elapsed))"
            if failed > 0 { last += "; \(failed) task\(failed == 1 ? "" : "s") failed" }
            lines.append(last)
            return lines
        }
    }

    private func address(_ task: Int) -> String { addresses[task] ?? "?" }
}
