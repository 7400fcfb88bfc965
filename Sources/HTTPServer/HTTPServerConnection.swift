import HTTP1
import Reactor

// @exclusivity(unchecked) marks hot-path state that is confined to the reactor thread and never accessed in
// overlapping ways (each access is a plain read or write with no call inside it), so the runtime exclusivity
// check, about a sixth of the server's user-space instructions per request (BENCHMARKS.md), guards nothing here.
/// One client connection: feeds the parser, runs requests one at a time in order (pipelined ones wait their
/// turn), enforces the timeouts, and closes gracefully after errors.
final class HTTPServerConnection: ConnectionHandler {
    /// Strong: a cycle with the server's table of connections, broken when the connection closes
    /// (`connectionClosed`). An unowned reference would cost a checked retain and a release at each use, several
    /// times a request.
    let server: HTTPServer
    /// Where the server keeps this connection in its table (-1: not there).
    @exclusivity(unchecked) var serverIndex = -1
    @exclusivity(unchecked) private(set) var transport: TCPConnection?
    @exclusivity(unchecked) private var parser: HTTPRequestParser
    @exclusivity(unchecked) private var currentHead: HTTPRequestHead?
    @exclusivity(unchecked) private var currentBody: [UInt8] = []
    /// The response being produced; later requests wait until it ends.
    @exclusivity(unchecked) private var inFlight: HTTPResponseWriter?
    /// The last finished writer, reused for the next request when nothing else still holds it.
    @exclusivity(unchecked) private var spareWriter: HTTPResponseWriter?
    @exclusivity(unchecked) private var processing = false
    @exclusivity(unchecked) private var closing = false
    @exclusivity(unchecked) private var peerDoneSending = false
    /// A request was refused: the rest of what the client sends is unreliable, so the close lingers.
    @exclusivity(unchecked) private var rejected = false
    @exclusivity(unchecked) private var requestsStarted = 0

    private enum Deadline { case none, idle, header, body, linger }
    @exclusivity(unchecked) private var deadlineKind = Deadline.idle
    @exclusivity(unchecked) private var deadline: UInt64 = 0
    @exclusivity(unchecked) private var timer: TimerHandle?

    /// The server's timeouts in nanoseconds, read once rather than per request.
    private let idleTimeout: UInt64
    private let headerTimeout: UInt64
    private let bodyTimeout: UInt64

    init(server: HTTPServer) {
        self.server = server
        let config = server.config
        parser = HTTPRequestParser(limits: config.limits)
        idleTimeout = MonotonicClock.nanoseconds(fromSeconds: config.idleTimeout)
        headerTimeout = MonotonicClock.nanoseconds(fromSeconds: config.headerTimeout)
        bodyTimeout = MonotonicClock.nanoseconds(fromSeconds: config.bodyTimeout)
    }

    private var reactor: Reactor { server.reactor }

    func connectionMade(_ connection: TCPConnection) {
        transport = connection
        deadlineKind = .idle
        deadline = reactor.wokeAt &+ idleTimeout
        // The timer goes off at the header deadline a first byte would set, if sooner: then that byte moves no
        // timer (one timer per connection, not two), and a silent connection, woken early, re-arms for the rest of
        // its idle time.
        armTimer(at: reactor.wokeAt &+ min(idleTimeout, headerTimeout))
    }

    func dataReceived(_ bytes: UnsafeRawBufferPointer) {
        if closing { return }  // draining after an error: discard
        if deadlineKind == .idle { setDeadline(.header) }
        parser.append(bytes)
        processInput()
    }

    func readEOF() -> Bool {
        peerDoneSending = true
        // Finish what was asked (a half-closed client still reads its answers), then close.
        if closing || (inFlight == nil && !parser.isInBody && currentHead == nil) {
            return false
        }
        return true
    }

    func writabilityChanged(_ writable: Bool) {
        inFlight?.transportWritabilityChanged(writable)
    }

    func connectionLost(_ reason: ConnectionLossReason) {
        timer?.cancel()
        armedDeadline = 0
        transport = nil
        let writer = inFlight
        inFlight = nil
        spareWriter = nil
        writer?.clientGone()
        server.connectionClosed(self)
    }

    // MARK: requests

    private func processInput() {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        events: while inFlight == nil && !closing, transport != nil {
            do {
                // Matched as it is returned: binding the optional first made a copy that was destroyed through
                // the enum's value witnesses, several hundred instructions a request.
                switch try parser.next() {
                case .head(let head)?:
                    if head.framing != .none { setDeadline(.body) }
                    if head.expectsContinue {
                        transport?.write(Self.continueBytes)
                    }
                    currentHead = consume head
                case .body(let part)?:
                    currentBody.append(contentsOf: part)
                case .end?:
                    guard var head = currentHead.take() else { continue }
                    if parser.sawTrailers { head.keepAlive = false }
                    let body = currentBody
                    currentBody = []
                    dispatch(consume head, body: body)
                case nil:
                    break events
                }
            } catch {
                reject(error)
                return
            }
        }
        guard transport != nil, !closing else { return }
        if inFlight == nil {
            if peerDoneSending {
                transport?.close()
                return
            }
            if parser.bufferedBytes == 0 && currentHead == nil {
                setDeadline(.idle)
            } else if deadlineKind == .idle {
                setDeadline(.header)
            }
        } else if parser.bufferedBytes > server.config.maxPipelinedBytes {
            // The client is sending faster than we answer: stop reading until the answer is out.
            transport?.pauseReading()
        }
    }

    private static let continueBytes = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// Consuming: the head and body move into the request, no copy of either.
    private func dispatch(_ head: consuming HTTPRequestHead, body: consuming [UInt8]) {
        server.stats.requests += 1
        requestsStarted += 1
        // A second request means answers back to back, which Nagle could hold until the client's delayed ACK.
        if requestsStarted == 2 { needsNoDelay() }
        setDeadline(.none)
        let writer: HTTPResponseWriter
        if spareWriter != nil, isKnownUniquelyReferenced(&spareWriter!) {
            writer = spareWriter.unsafelyUnwrapped
            writer.reuse(connection: self, version: head.version, keepAlive: head.keepAlive, isHead: head.isHead)
        } else {
            writer = HTTPResponseWriter(connection: self, version: head.version, keepAlive: head.keepAlive, isHead: head.isHead)
        }
        spareWriter = nil
        inFlight = writer
        server.handler(HTTPRequest(head: consume head, body: consume body), writer)
    }

    /// Called by the writer when its response is complete.
    func responseFinished(_ writer: HTTPResponseWriter, keepAlive: Bool) {
        guard inFlight === writer else { return }
        inFlight = nil
        spareWriter = writer
        guard keepAlive, !peerDoneSending || parser.bufferedBytes > 0 else {
            closeGracefully(lingering: rejected)
            return
        }
        transport?.resumeReading()
        if !processing { processInput() } else { setDeadline(.idle) }
    }

    /// Answers a request that could not be parsed, then closes.
    private func reject(_ error: HTTPParseError) {
        server.stats.rejectedRequests += 1
        rejected = true
        let writer = HTTPResponseWriter(connection: self)
        inFlight = writer
        writer.respond(status: error.status, json: .error(Self.errorCode(error.status), error.message), closeAfter: true)
    }

    static func errorCode(_ status: HTTPStatus) -> String {
        switch status.code {
        case 400: return "bad_request"
        case 404: return "not_found"
        case 405: return "method_not_allowed"
        case 408: return "request_timeout"
        case 413: return "content_too_large"
        case 414: return "uri_too_long"
        case 417: return "expectation_failed"
        case 431: return "header_fields_too_large"
        case 501: return "not_implemented"
        case 505: return "version_not_supported"
        default: return "error"
        }
    }

    /// Sends FIN after the last response and waits briefly for the client's own FIN, so unread request bytes do
    /// not turn the close into a reset that could destroy the response in flight.
    ///
    /// When nothing of the client's is pending (a plain `Connection: close`), a close after flush is enough, as
    /// nginx does; lingering is for refused requests and pipelined leftovers.
    func closeGracefully(lingering: Bool = false) {
        guard let transport, !closing else { return }
        closing = true
        if !lingering && parser.bufferedBytes == 0 && !parser.isInBody && currentHead == nil {
            transport.close()
            return
        }
        transport.shutdownWrite()
        setDeadline(.linger)
    }

    func shutdown(finishing: (HTTPResponseWriter) -> Void) {
        if let writer = inFlight {
            finishing(writer)
        } else {
            closeGracefully()
        }
    }

    // MARK: writing, for the writer

    /// Turns Nagle's algorithm off for the rest of the connection (streams, responses in several writes, pipelining).
    func needsNoDelay() {
        transport?.setNoDelay()
    }

    func write(_ bytes: UnsafeRawBufferPointer) {
        transport?.write(bytes)
    }

    var isTransportWritable: Bool { transport?.isWritable ?? false }
    var isOpen: Bool { transport?.isOpen ?? false }

    func abort() {
        transport?.abort()
    }

    // MARK: timeouts

    private func setDeadline(_ kind: Deadline) {
        deadlineKind = kind
        let timeout: UInt64
        switch kind {
        case .none:
            return
        case .idle: timeout = idleTimeout
        case .header: timeout = headerTimeout
        case .body: timeout = bodyTimeout
        case .linger: timeout = 2_000_000_000
        }
        // The loop's wake-up time, not a fresh reading: these timeouts are seconds long.
        deadline = reactor.wokeAt &+ timeout
        // One timer per connection, moved only when the deadline comes sooner; a later deadline is picked up
        // when the timer fires early. No timer churn per request.
        if armedDeadline == 0 || deadline < armedDeadline {
            timer?.cancel()
            armTimer(at: deadline)
        }
    }

    /// When the pending timer fires; 0 when none is pending (so the common case never touches the timer object).
    @exclusivity(unchecked) private var armedDeadline: UInt64 = 0

    private func armTimer(at time: UInt64) {
        armedDeadline = time
        // Unowned: connectionLost cancels the timer before the connection can go, and a weak capture would give
        // every connection a side table, slowing each retain and release on the request path.
        timer = reactor.callAt(deadline: time) { [unowned self] in self.timerFired() }
    }

    private func timerFired() {
        armedDeadline = 0
        guard deadlineKind != .none, let transport else { return }
        if MonotonicClock.now() < deadline {
            armTimer(at: deadline)
            return
        }
        switch deadlineKind {
        case .idle, .linger:
            transport.close()
        case .header, .body:
            server.stats.timeouts += 1
            // A client that started a request and stalled gets 408, then the connection closes.
            let writer = HTTPResponseWriter(connection: self)
            inFlight = writer
            rejected = true
            let what = deadlineKind == .header ? "request head" : "request body"
            writer.respond(status: .requestTimeout, json: .error("request_timeout", "the \(what) did not arrive in time"), closeAfter: true)
        case .none:
            break
        }
    }
}
