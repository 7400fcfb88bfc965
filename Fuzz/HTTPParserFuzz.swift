// libFuzzer target for the HTTP request parser and its chunked decoder (built by scripts/fuzz.sh together with
// the parser's own source files, nothing else).
//
// Invariants checked on every input:
// - the same bytes fed whole and in three pieces (split where the input's first two bytes say) give the same
//   events and the same error;
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
    let pieces = run(body, cuts: [min(first, second), max(first, second)])
    precondition(whole == pieces, "split-dependent result: \(whole) vs \(pieces)")
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
