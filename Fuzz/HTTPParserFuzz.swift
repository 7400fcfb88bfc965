// libFuzzer target for the HTTP1 module: the request parser, its chunked decoder and the connection state machine
// (built by scripts/fuzz.sh together with the module's own source files, nothing else).
//
// Invariants checked on every input:
// - the connection state machine, fed the same bytes whole and in three pieces, takes the same actions (requests
//   dispatched, refusals, continues, closes) in the same order, and takes nothing after it closes;
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

/// An event as plain values, body parts merged so the split does not show: what a run that lets its heads go can
/// still compare.
private enum Logged: Equatable {
    case head(String)
    case body([UInt8])
    case end
}

private func append(_ event: HTTPParserEvent, to log: inout [Logged]) {
    switch event {
    case .head(let head):
        let fields = head.headers.map { "\($0.name): \($0.value)" }.joined(separator: "|")
        log.append(.head("\(head.method) \(head.target) \(head.path) \(head.query ?? "-") \(head.version) \(head.keepAlive) \(head.expectsContinue) \(head.framing) [\(fields)]"))
    case .body(let more):
        if case .body(let earlier)? = log.last {
            log[log.count - 1] = .body(earlier + more)
        } else {
            log.append(.body(more))
        }
    case .end:
        log.append(.end)
    }
}

/// Feeds `bytes` to a fresh parser, cut at `cuts`, handing each event over as it comes; the error, if any.
private func feed(_ bytes: ArraySlice<UInt8>, cuts: [Int], _ each: (HTTPParserEvent) -> Void) -> HTTPParseError? {
    var parser = HTTPRequestParser(limits: limits)
    var start = bytes.startIndex
    for cut in cuts + [bytes.endIndex] where cut >= start {
        parser.append(Array(bytes[start..<cut]))
        start = cut
        do {
            while let event = try parser.next() { each(event) }
        } catch {
            return error
        }
    }
    return nil
}

/// Runs a connection's state machine over `bytes` cut at `cuts`, answering each request at once (keep-alive as it
/// asks), and logs every action.
private func runConnection(_ bytes: ArraySlice<UInt8>, cuts: [Int]) -> [String] {
    var config = HTTPConnectionConfig()
    config.limits = limits
    var machine = HTTPConnectionStateMachine(config: config)
    let now: UInt64 = 1_000_000_000
    machine.connectionMade(now: now)
    var log: [String] = []
    var ended = false
    var start = bytes.startIndex
    for cut in cuts + [bytes.endIndex] where cut >= start {
        machine.bytesReceived(Array(bytes[start..<cut]), now: now)
        start = cut
        while let action = machine.nextAction(now: now) {
            precondition(!ended, "an action after the connection ended: \(action) in \(log)")
            switch action {
            case .dispatch:
                let request = machine.takeRequest()
                log.append("dispatch \(request.method) \(request.path) \(request.body.count)")
                machine.responseComplete(keepAlive: request.head.keepAlive, outputBuffered: 0, now: now)
            case .reject:
                let error = machine.refusal!
                log.append("reject \(error.status.code)")
                machine.responseComplete(keepAlive: false, outputBuffered: 0, now: now)
            case .sendContinue:
                log.append("continue")
            case .close, .shutdownWrite:
                // One ending: whether it lingers depends on whether more bytes had arrived by then, which is
                // timing, not a difference in what the client asked.
                log.append("end")
                ended = true
            case .reset:
                log.append("reset")
                ended = true
            case .measureUnsent:
                preconditionFailure("measureUnsent without a deadline")
            }
        }
    }
    return log
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 2 else { return 0 }
    let all = Array(UnsafeBufferPointer(start: data, count: size))
    let body = all[2...]
    let length = body.count
    let first = length == 0 ? 2 : 2 + Int(all[0]) % (length + 1)
    let second = length == 0 ? 2 : 2 + Int(all[1]) % (length + 1)
    // The whole run keeps every head; the split run lets each go once logged, so its parser refills one buffer.
    var heads: [HTTPRequestHead] = []
    var whole: [Logged] = []
    let wholeError = feed(body, cuts: []) { event in
        if case .head(let head) = event { heads.append(head) }
        append(event, to: &whole)
    }
    var pieces: [Logged] = []
    let piecesError = feed(body, cuts: [min(first, second), max(first, second)]) { append($0, to: &pieces) }
    precondition(whole == pieces && wholeError == piecesError,
                 "split-dependent result: \(whole) \(String(describing: wholeError)) vs \(pieces) \(String(describing: piecesError))")
    let cuts = [min(first, second), max(first, second)]
    let wholeConnection = runConnection(body, cuts: [])
    let splitConnection = runConnection(body, cuts: cuts)
    precondition(wholeConnection == splitConnection, "split-dependent connection: \(wholeConnection) vs \(splitConnection)")
    if let error = wholeError {
        precondition((400...599).contains(error.status.code), "refusal without a 4xx/5xx status: \(error)")
    }
    for head in heads {
        precondition(head.headers.count <= limits.maxHeaderCount, "too many headers accepted")
    }
    // Body parts are merged per request, so each logged body is one request's whole body.
    for case .body(let bytes) in whole {
        precondition(bytes.count <= limits.maxBodyBytes, "body over the limit accepted")
    }
    return 0
}
