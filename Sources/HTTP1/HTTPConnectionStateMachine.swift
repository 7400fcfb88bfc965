/// One HTTP/1.1 server connection as a value: events in (bytes received, the peer's FIN, output queued or
/// flushed, a deadline reached, the application's response starting and ending), actions out (`nextAction`),
/// plus what it wants of the transport at any moment (`wantsToRead`, `deadline`). It never touches a socket or
/// a clock: every input carries the time, so tests drive it with a manual clock and no I/O.
///
/// What it guarantees, whatever the client does:
/// - **Backpressure on every path.** While queued output is above the high watermark, reading stops and no new
///   request (pipelined or not) is taken; both resume at the low watermark. A connection thus holds at most one
///   head buffer, one body (the body limit), the pipelined bytes allowed plus one read, and one high watermark
///   of output plus the one answer that crossed it.
/// - **Deadlines on every path.** A connection that sends nothing closes at the header timeout; a started head
///   or body that stalls gets 408; output queued here that does not move for the send timeout resets the
///   connection in any state, lingering and closing included; output the kernel holds unacknowledged is checked
///   (`measureUnsent`) while idle, streaming or lingering, and resets it as well.
///
/// Requests are answered one at a time in order; a refused request (parse error, timeout) is answered and the
/// connection closes, lingering if the client may still be sending.
public struct HTTPConnectionStateMachine {
    public enum State: Sendable, Equatable {
        /// Nothing of a request buffered: before the first request or between keep-alive requests.
        case idle
        case readingHead
        case readingBody
        /// A request was dispatched (or refused) and its response has not started.
        case waitingForHandler
        /// The response is being streamed.
        case streaming
        /// The response is complete but its output is above the high watermark: the next request waits.
        case writing
        /// FIN sent after the last response; discarding input until the client's FIN.
        case lingering
        /// Closing once the queued output is written.
        case closing
        case closed
    }

    public let config: HTTPConnectionConfig
    public private(set) var state = State.idle
    private var parser: HTTPRequestParser
    /// The head being read, then (state waiting for the handler) the one `takeRequest` hands over.
    private var currentHead: HTTPRequestHead?
    /// Whether `currentHead` holds a head: asked instead of comparing the optional, which goes through the head's
    /// value witnesses (a copy and a destroy of the whole head) several times a request.
    private var hasHead = false
    private var currentBody: [UInt8] = []
    /// Why the last request was refused, set with `.reject`.
    public private(set) var refusal: HTTPParseError?
    /// An action decided by an input that `nextAction` hands out first.
    private var pending: HTTPConnectionAction?
    /// Requests dispatched so far (refusals excluded).
    public private(set) var requestsStarted = 0
    private var peerClosed = false
    /// A request was refused: the close lingers, since the rest of what the client sends is unreliable.
    private var rejected = false

    private var inputDeadline: UInt64 = 0
    public private(set) var inputDeadlineKind = HTTPConnectionDeadline.idle
    /// The idle deadline in force, kept when a few stray bytes (empty lines) come and go without a request.
    private var idleDeadline: UInt64 = 0

    /// Output queued in the transport, as last reported.
    public private(set) var outputBuffered = 0
    private var outputHigh = false
    /// When queued output last moved (or began to queue); 0 while nothing is queued.
    private var outputProgressAt: UInt64 = 0
    /// Output the kernel took but the client has not acknowledged is out of the process's sight: while idle after
    /// a response, streaming or lingering with nothing queued here, the owner measures it every half send timeout
    /// (`measureUnsent`). When to next (0: no check); what was unsent and how much had been sent at the last check
    /// (-1: no check yet, the next one is the baseline); checks in a row that saw nothing acknowledged.
    private var unsentCheckAt: UInt64 = 0
    private var lastUnsent = -1
    private var lastSent: UInt64 = 0
    private var stalledChecks = 0
    /// The linger's time is up: it ends (a close) once the kernel has nothing left to send.
    private var lingerExpired = false

    public init(config: HTTPConnectionConfig) {
        self.config = config
        parser = HTTPRequestParser(limits: config.limits)
        inputHoldLimit = max(config.maxPipelinedBytes, config.limits.maxHeaderBytes)
    }

    /// Request bytes held unparsed before reading pauses: the pipelining limit, but never less than one largest
    /// head, which must fit whole before it can be parsed.
    private let inputHoldLimit: Int

    // MARK: what the transport should do

    /// Whether the transport should read now.
    public var wantsToRead: Bool {
        switch state {
        // Between requests too: an owner may leave complete requests buffered for a later turn (a pipelining
        // client is served a share at a time), and what it holds meanwhile stays bounded.
        case .idle, .readingHead, .readingBody: return !outputHigh && parser.bufferedBytes <= inputHoldLimit
        case .waitingForHandler, .streaming: return !outputHigh && parser.bufferedBytes <= config.maxPipelinedBytes
        case .lingering: return true
        case .writing, .closing, .closed: return false
        }
    }

    /// The earliest deadline running (monotonic nanoseconds), 0 if none. Call `deadlineReached` once it passes.
    public var deadline: UInt64 {
        let send = sendDeadline
        if inputDeadline == 0 { return send }
        if send == 0 { return inputDeadline }
        return min(inputDeadline, send)
    }

    /// Which deadline `deadline` is.
    public var deadlineKind: HTTPConnectionDeadline? {
        let send = sendDeadline
        if send != 0 && (inputDeadline == 0 || send <= inputDeadline) { return .send }
        return inputDeadline == 0 ? nil : inputDeadlineKind
    }

    /// The send deadline while output is queued here; else the next check on what the kernel holds, if one runs.
    private var sendDeadline: UInt64 {
        if outputProgressAt != 0 { return outputProgressAt &+ config.sendTimeout }
        return unsentCheckAt != 0 && checksKernelOutput ? unsentCheckAt : 0
    }

    /// The states in which answers may sit in the kernel unread while nothing else would notice.
    private var checksKernelOutput: Bool {
        switch state {
        case .idle: return requestsStarted > 0
        case .streaming, .lingering: return true
        default: return false
        }
    }

    /// Request bytes received and not yet parsed.
    public var bufferedRequestBytes: Int { parser.bufferedBytes }

    // MARK: inputs

    /// The connection opened: the first request must begin within the header timeout.
    public mutating func connectionMade(now: UInt64) {
        precondition(state == .idle && requestsStarted == 0, "connectionMade on a used connection")
        enterIdle(now: now)
    }

    /// Bytes arrived. Follow with `nextAction` until it returns nil.
    public mutating func bytesReceived(_ bytes: UnsafeRawBufferPointer, now: UInt64) {
        switch state {
        case .lingering, .closing, .closed:
            return  // discarded: nothing more of this client's is read as a request
        case .idle:
            move(to: .readingHead)
            setInputDeadline(.header, at: now &+ config.headerTimeout)
            unsentCheckAt = 0
        case .readingHead, .readingBody, .waitingForHandler, .streaming, .writing:
            break
        }
        parser.append(bytes)
    }

    public mutating func bytesReceived(_ bytes: [UInt8], now: UInt64) {
        bytes.withUnsafeBytes { bytesReceived($0, now: now) }
    }

    /// The client shut down its sending side. Returns whether to keep the connection open to finish answering
    /// (false: close it once the output is written).
    public mutating func peerClosedInput() -> Bool {
        peerClosed = true
        if (state == .idle || state == .readingHead) && parser.bufferedBytes > 0 {
            // Requests that arrived before the FIN and are not taken yet (the owner takes a share per turn): they
            // are answered, in order; once no complete request is left, `nextAction` closes.
            return true
        }
        switch state {
        case .waitingForHandler, .streaming, .writing:
            return true
        case .idle, .readingHead, .readingBody, .lingering:
            // Nothing to answer, or a request that can no longer complete, or the FIN the linger waited for.
            move(to: .closing)
            inputDeadline = 0
            return false
        case .closing, .closed:
            return false
        }
    }

    /// The application started a streamed response.
    public mutating func responseStarted(now: UInt64) {
        if state == .closed { return }  // reset a moment ago; the owner hears of the loss on the loop's next turn
        assert(state == .waitingForHandler, "a response started in state \(state)")
        guard state == .waitingForHandler else { return }
        move(to: .streaming)
        startUnsentChecks(now: now)
    }

    /// The application's response is complete; `outputBuffered` is what the transport still holds of it.
    public mutating func responseComplete(keepAlive: Bool, outputBuffered: Int, now: UInt64) {
        if state == .closed { return }  // reset a moment ago; the owner hears of the loss on the loop's next turn
        assert(state == .waitingForHandler || state == .streaming, "a response completed in state \(state)")
        guard state == .waitingForHandler || state == .streaming else { return }
        noteOutput(outputBuffered, now: now)
        if !keepAlive || rejected || (peerClosed && parser.bufferedBytes == 0) {
            if rejected || parser.bufferedBytes > 0 {
                move(to: .lingering)
                lingerExpired = false
                // The linger counts from when the answer has left the process; until then the send deadline runs.
                if outputProgressAt == 0 {
                    setInputDeadline(.linger, at: now &+ config.lingerTimeout)
                } else {
                    inputDeadline = 0
                }
                startUnsentChecks(now: now)
                pending = .shutdownWrite
            } else {
                move(to: .closing)
                inputDeadline = 0
                pending = .close
            }
            return
        }
        if outputHigh {
            move(to: .writing)
            inputDeadline = 0
        } else {
            resumeRequests(now: now)
        }
    }

    /// The application wrote and the transport kept `buffered` bytes it could not send at once.
    public mutating func outputQueued(_ buffered: Int, now: UInt64) {
        noteOutput(buffered, now: now)
    }

    /// The transport sent some of its queued output; `remaining` are still queued (more than before, when output
    /// it had counted as sent came back: then the high mark applies as for a write).
    public mutating func outputFlushed(remaining: Int, now: UInt64) {
        outputBuffered = remaining
        outputProgressAt = remaining == 0 ? 0 : now
        if remaining > config.highWatermark { outputHigh = true }
        if outputHigh && remaining <= config.lowWatermark {
            outputHigh = false
            if state == .writing { resumeRequests(now: now) }
        }
        guard remaining == 0 else { return }
        if state == .lingering && inputDeadline == 0 && !lingerExpired {
            setInputDeadline(.linger, at: now &+ config.lingerTimeout)
        }
        if unsentCheckAt == 0 && checksKernelOutput && (state != .idle || checksIdleConnections) {
            startUnsentChecks(now: now)
        }
    }

    /// The timer for `deadline` went off (perhaps early). Returns what to do, nil if nothing is due yet.
    public mutating func deadlineReached(now: UInt64) -> HTTPConnectionAction? {
        if outputProgressAt != 0 && now >= outputProgressAt &+ config.sendTimeout {
            return resetForStalledOutput()
        }
        if outputProgressAt == 0 && unsentCheckAt != 0 && checksKernelOutput && now >= unsentCheckAt {
            unsentCheckAt = 0
            return .measureUnsent
        }
        guard inputDeadline != 0, now >= inputDeadline else { return nil }
        inputDeadline = 0
        switch inputDeadlineKind {
        case .idle:
            move(to: .closing)
            return .close
        case .header, .body:
            let what = inputDeadlineKind == .header ? "request head" : "request body"
            return refuse(HTTPParseError(.requestTimeout, "the \(what) did not arrive in time"))
        case .linger:
            // Closing with the client's bytes unread resets the connection, which would destroy what the kernel
            // has not sent yet: the close waits until it has (`unsentMeasured`), or resets if that stalls.
            lingerExpired = true
            return .measureUnsent
        case .send:
            return nil  // never an input deadline: the send deadline is `outputProgressAt`'s
        }
    }

    /// What `measureUnsent` found: the kernel holds `unsent` bytes not yet acknowledged, of `sent` handed to it
    /// since the connection opened. Returns `.reset` when two checks running (a send timeout) saw no byte
    /// acknowledged, `.close` when an expired linger has nothing left to send.
    public mutating func unsentMeasured(_ unsent: Int, sent: UInt64, now: UInt64) -> HTTPConnectionAction? {
        guard checksKernelOutput else { return nil }
        if state == .lingering && lingerExpired && unsent == 0 {
            move(to: .closing)
            return .close
        }
        // Acknowledged since the last check: what was unsent then, plus what was handed over since, less what is
        // unsent now.
        let acknowledged = lastUnsent < 0 || unsent == 0 || lastUnsent &+ Int(truncatingIfNeeded: sent &- lastSent) > unsent
        lastUnsent = unsent
        lastSent = sent
        if acknowledged {
            stalledChecks = 0
        } else {
            stalledChecks += 1
            if stalledChecks >= 2 { return resetForStalledOutput() }
        }
        if unsent == 0 && state == .idle {
            unsentCheckAt = 0  // nothing waits for this client: the idle timeout governs
            return nil
        }
        unsentCheckAt = now &+ config.sendTimeout / 2
        return nil
    }

    private mutating func resetForStalledOutput() -> HTTPConnectionAction {
        outputProgressAt = 0
        unsentCheckAt = 0
        inputDeadline = 0
        move(to: .closed)
        return .reset
    }

    /// The server is stopping: an idle connection closes now; one mid-request closes lingering. Connections
    /// answering a request are left to finish it (the caller ends the response).
    public mutating func stop(now: UInt64) -> HTTPConnectionAction? {
        switch state {
        case .idle, .readingHead, .readingBody:
            if parser.bufferedBytes > 0 || state == .readingBody {
                move(to: .lingering)
                setInputDeadline(.linger, at: now &+ config.lingerTimeout)
                return .shutdownWrite
            }
            move(to: .closing)
            inputDeadline = 0
            return .close
        case .writing:
            move(to: .closing)
            inputDeadline = 0
            return .close
        case .waitingForHandler, .streaming, .lingering, .closing, .closed:
            return nil
        }
    }

    /// The transport is gone.
    public mutating func connectionLost() {
        move(to: .closed)
        inputDeadline = 0
        outputProgressAt = 0
        pending = nil
    }

    // MARK: actions

    /// The next thing to do, nil when the machine waits for an input.
    public mutating func nextAction(now: UInt64) -> HTTPConnectionAction? {
        if let action = pending {
            pending = nil
            return action
        }
        while true {
            switch state {
            case .idle, .readingHead, .readingBody: break
            default: return nil
            }
            do {
                // Matched as it is returned: binding the optional first made a copy that was destroyed through
                // the enum's value witnesses, several hundred instructions a request.
                switch try parser.next() {
                case .head(let head)?:
                    let expectsContinue = head.expectsContinue
                    if head.framing != .none {
                        move(to: .readingBody)
                        setInputDeadline(.body, at: now &+ config.bodyTimeout)
                    }
                    currentHead = consume head
                    hasHead = true
                    if expectsContinue { return .sendContinue }
                case .body(let part)?:
                    currentBody.append(contentsOf: part)
                case .end?:
                    // The head stays where it is until `takeRequest` moves it out: no copy on the way.
                    guard hasHead else { continue }
                    if parser.sawTrailers { currentHead!.keepAlive = false }
                    requestsStarted += 1
                    move(to: .waitingForHandler)
                    inputDeadline = 0
                    return .dispatch
                case nil:
                    waitForMoreInput(now: now)
                    if state == .closing { return .close }
                    return nil
                }
            } catch {
                return refuse(error)
            }
        }
    }

    /// The request `.dispatch` announced; the head and body move out (call once per `.dispatch`).
    public mutating func takeRequest() -> HTTPRequest {
        let body = currentBody
        currentBody = []
        hasHead = false
        return HTTPRequest(head: currentHead.take().unsafelyUnwrapped, body: consume body)
    }

    // MARK: internals

    private mutating func refuse(_ error: HTTPParseError) -> HTTPConnectionAction {
        rejected = true
        refusal = error
        currentHead = nil
        hasHead = false
        currentBody = []
        move(to: .waitingForHandler)
        inputDeadline = 0
        return .reject
    }

    /// The parser needs more bytes: set the state and deadline that fit what is buffered.
    private mutating func waitForMoreInput(now: UInt64) {
        if peerClosed {
            // No more bytes can come: a partial request can never complete, so there is nothing to wait for.
            move(to: .closing)
            inputDeadline = 0
            return
        }
        if !hasHead && parser.bufferedBytes == 0 {
            if state != .idle {
                // Stray bytes (empty lines) came and went without a request: the idle deadline runs on.
                move(to: .idle)
                setInputDeadline(.idle, at: idleDeadline)
            }
        } else if state == .idle {
            move(to: .readingHead)
            setInputDeadline(.header, at: now &+ config.headerTimeout)
        }
    }

    /// After a response: take the next request, or wait for one.
    private mutating func resumeRequests(now: UInt64) {
        if parser.bufferedBytes == 0 {
            if peerClosed {
                move(to: .closing)
                inputDeadline = 0
                pending = .close
                return
            }
            enterIdle(now: now)
        } else {
            move(to: .readingHead)
            setInputDeadline(.header, at: now &+ config.headerTimeout)
        }
    }

    private mutating func enterIdle(now: UInt64) {
        move(to: .idle)
        idleDeadline = now &+ (requestsStarted == 0 ? config.headerTimeout : config.idleTimeout)
        setInputDeadline(.idle, at: idleDeadline)
        if requestsStarted > 0 && checksIdleConnections { startUnsentChecks(now: now) }
    }

    /// Whether idle connections need the kernel checks: not when the idle timeout ends them sooner anyway.
    private var checksIdleConnections: Bool { config.sendTimeout / 2 < config.idleTimeout }

    private mutating func startUnsentChecks(now: UInt64) {
        unsentCheckAt = now &+ config.sendTimeout / 2
        lastUnsent = -1
        stalledChecks = 0
    }

    private mutating func noteOutput(_ buffered: Int, now: UInt64) {
        outputBuffered = buffered
        if buffered == 0 {
            outputProgressAt = 0
            return
        }
        if outputProgressAt == 0 { outputProgressAt = now }
        if buffered > config.highWatermark { outputHigh = true }
    }

    private mutating func setInputDeadline(_ kind: HTTPConnectionDeadline, at time: UInt64) {
        inputDeadlineKind = kind
        inputDeadline = time
    }

    /// Every state change goes through here; a change the machine does not allow is a programming error.
    private mutating func move(to next: State) {
        assert(Self.allows(from: state, to: next), "illegal connection state change: \(state) -> \(next)")
        state = next
    }

    static func allows(from: State, to: State) -> Bool {
        if to == .closed || from == to { return true }
        switch from {
        case .idle: return to == .readingHead || to == .closing
        case .readingHead: return [.readingBody, .idle, .waitingForHandler, .closing, .lingering].contains(to)
        case .readingBody: return [.waitingForHandler, .closing, .lingering].contains(to)
        case .waitingForHandler: return [.streaming, .idle, .readingHead, .writing, .lingering, .closing].contains(to)
        case .streaming: return [.idle, .readingHead, .writing, .lingering, .closing].contains(to)
        case .writing: return [.idle, .readingHead, .closing].contains(to)
        case .lingering: return to == .closing
        case .closing, .closed: return false
        }
    }
}
