// libFuzzer target for the HTTP request parser and its chunked decoder (built by scripts/fuzz.sh together with
// the parser's own source files, nothing else).
//
// Invariants checked on every input:
// - the same bytes fed whole and in three pieces (split where the input's first two bytes say) give the same
//   events and the same error; the whole run keeps every head, the split run lets each go at once, so the
//   parser refills one head buffer there and not here: a refill that leaves stale bytes or spans shows up;
// - every refusal maps to a 4xx or 5xx status;
// - nothing accepted exceeds the configured limits (header count, body size).

private let limits: HTTPLimits = {
    var limits = HTTPLimits()
    limits.maxRequestLineBytes = 256
    limits.maxHeaderBytes = 1024
    limits.maxHeaderCount = 16
    limits.maxBodyBytes = 2048
    limits.maxChunkLineBytes = 64
    return limits
}()

private struct Outcome: Equatable {
    var events: [HTTPParserEvent] = []
    var error: HTTPParseError?
}

/// A head as plain values: what a run that does not keep its heads can still compare.
private func describe(_ head: HTTPRequestHead) -> String {
    let fields = head.headers.map { "\($0.name): \($0.value)" }.joined(separator: "|")
    return "\(head.method) \(head.target) \(head.path) \(head.query ?? "-") \(head.version) \(head.keepAlive) \(head.expectsContinue) \(head.framing) [\(fields)]"
}

/// The events with each head described, for comparing runs.
private func described(_ outcome: Outcome) -> [String] {
    outcome.events.map { event in
        switch event {
        case .head(let head): return describe(head)
        case .body(let bytes): return "body \(bytes)"
        case .end: return "end"
        }
    }
}

/// Like `run`, but each head is described and dropped before the next is parsed.
private func runDroppingHeads(_ bytes: ArraySlice<UInt8>, cuts: [Int]) -> (log: [String], error: HTTPParseError?) {
    var parser = HTTPRequestParser(limits: limits)
    var log: [String] = []
    var pendingBody: [UInt8]?
    func flushBody() {
        if let body = pendingBody { log.append("body \(body)") }
        pendingBody = nil
    }
    var start = bytes.startIndex
    for cut in cuts + [bytes.endIndex] where cut >= start {
        parser.append(Array(bytes[start..<cut]))
        start = cut
        do {
            while let event = try parser.next() {
                switch event {
                case .head(let head):
                    flushBody()
                    log.append(describe(head))
                case .body(let more):
                    pendingBody = (pendingBody ?? []) + more
                case .end:
                    flushBody()
                    log.append("end")
                }
            }
        } catch {
            flushBody()
            return (log, error)
        }
    }
    flushBody()
    return (log, nil)
}

private func run(_ bytes: ArraySlice<UInt8>, cuts: [Int]) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var outcome = Outcome()
    var start = bytes.startIndex
    for cut in cuts + [bytes.endIndex] where cut >= start {
        parser.append(Array(bytes[start..<cut]))
        start = cut
        do {
            while let event = try parser.next() {
                if case .body(let more) = event, case .body(let earlier)? = outcome.events.last {
                    outcome.events[outcome.events.count - 1] = .body(earlier + more)
                } else {
                    outcome.events.append(event)
                }
            }
        } catch {
            outcome.error = error
            return outcome
        }
    }
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 2 else { return 0 }
    let all = Array(UnsafeBufferPointer(start: data, count: size))
    let body = all[2...]
    let length = body.count
    let first = length == 0 ? 2 : 2 + Int(all[0]) % (length + 1)
    let second = length == 0 ? 2 : 2 + Int(all[1]) % (length + 1)
    let whole = run(body, cuts: [])
    let pieces = runDroppingHeads(body, cuts: [min(first, second), max(first, second)])
    let wholeLog = described(whole)
    precondition(wholeLog == pieces.log && whole.error == pieces.error,
                 "split-dependent result: \(wholeLog) \(String(describing: whole.error)) vs \(pieces.log) \(String(describing: pieces.error))")
    if let error = whole.error {
        precondition((400...599).contains(error.status.code), "refusal without a 4xx/5xx status: \(error)")
    }
    var bodyBytes = 0
    for event in whole.events {
        switch event {
        case .head(let head):
            precondition(head.headers.count <= limits.maxHeaderCount, "too many headers accepted")
            bodyBytes = 0
        case .body(let part):
            bodyBytes += part.count
            precondition(bodyBytes <= limits.maxBodyBytes, "body over the limit accepted")
        case .end:
            break
        }
    }
    return 0
}
