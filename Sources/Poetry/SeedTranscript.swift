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

    /// The lines for `event`, each followed by a newline, appended to `output`: the same text as `lines(for:)`.
    /// An async fetch's read (the line printed thousands of times a second in a fan-out) is written straight into
    /// the bytes, without a `String` or an array per read.
    public mutating func appendLines(for event: FetchEvent, to output: inout [UInt8]) {
        if mode == .async, case .received(let task, let bytes, let total, _) = event {
            if task < received.count { received[task] = total }
            output.append(contentsOf: "Task ".utf8)
            Self.appendDecimal(task, to: &output)
            output.append(contentsOf: ": got ".utf8)
            Self.appendDecimal(bytes, to: &output)
            output.append(contentsOf: " bytes of poetry from ".utf8)
            var address = address(task)
            address.withUTF8 { output.append(contentsOf: $0) }
            output.append(UInt8(ascii: "\n"))
            return
        }
        for line in lines(for: event) {
            output.append(contentsOf: line.utf8)
            output.append(UInt8(ascii: "\n"))
        }
    }

    private static func appendDecimal(_ value: Int, to output: inout [UInt8]) {
        guard value > 0 else {
            if value == 0 { output.append(UInt8(ascii: "0")) } else { output.append(contentsOf: String(value).utf8) }
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for any Int's 19 digits
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            while rest > 0 {
                buffer[count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            }
            output.append(contentsOf: buffer[..<count].reversed())
        }
    }
}
