import HTTP1
import Reactor

// @exclusivity(unchecked) marks hot-path state that is confined to the reactor thread and never accessed in
// overlapping ways (each access is a plain read or write with no call inside it), so the runtime exclusivity
// check, about a sixth of the server's user-space instructions per request (BENCHMARKS.md), guards nothing here.
/// The transport glue for one client connection: it feeds `HTTPConnectionStateMachine` the transport's events and
/// the loop's time, performs the actions it returns, and keeps the transport's reading and the one timer in step
/// with what the machine wants. Every decision (order, backpressure, deadlines, closing) is the machine's.
final class HTTPServerConnection: ConnectionHandler {
    /// Strong: a cycle with the server's table of connections, broken when the connection closes
    /// (`connectionClosed`). An unowned reference would cost a checked retain and a release at each use, several
    /// times a request.
    let server: HTTPServer
    /// Where the server keeps this connection in its table (-1: not there).
    @exclusivity(unchecked) var serverIndex = -1
    @exclusivity(unchecked) private(set) var transport: TCPConnection?
    @exclusivity(unchecked) private var machine: HTTPConnectionStateMachine
    /// The response being produced; later requests wait until it ends.
    @exclusivity(unchecked) private var inFlight: HTTPResponseWriter?
    /// The last finished writer, reused for the next request when nothing else still holds it.
    @exclusivity(unchecked) private var spareWriter: HTTPResponseWriter?
    /// Inside `pump`: actions decided meanwhile wait for its loop rather than re-entering it.
    @exclusivity(unchecked) private var pumping = false
    /// A response completed since `pump` last looked: the connection may have gone idle.
    @exclusivity(unchecked) private var answered = false
    @exclusivity(unchecked) private var readingPaused = false
    /// When the pending timer fires; 0 when none is pending (so the common case never touches the timer object).
    @exclusivity(unchecked) private var armedDeadline: UInt64 = 0
    @exclusivity(unchecked) private var timer: TimerHandle?

    init(server: HTTPServer) {
        self.server = server
        machine = HTTPConnectionStateMachine(config: server.connectionConfig)
    }

    private var reactor: Reactor { server.reactor }

    /// Between keep-alive requests: what the server may close to make room.
    var isIdleKeepAlive: Bool { machine.state == .idle && machine.requestsStarted > 0 }
    /// When this connection went idle, for eviction oldest first.
    @exclusivity(unchecked) private(set) var idleSince: UInt64 = 0

    // MARK: transport events

    func connectionMade(_ connection: TCPConnection) {
        transport = connection
        // The machine's marks and the transport's agree, so the writer's writability and the machine's backpressure
        // turn at the same points.
        connection.setWatermarks(high: server.connectionConfig.highWatermark, low: server.connectionConfig.lowWatermark)
        idleSince = reactor.wokeAt
        machine.connectionMade(now: reactor.wokeAt)
        synchronise()
    }

    func dataReceived(_ bytes: UnsafeRawBufferPointer) {
        dispatchedThisTurn = 0
        machine.bytesReceived(bytes, now: reactor.wokeAt)
        pump()
    }

    func readEOF() -> Bool {
        let keepOpen = machine.peerClosedInput()
        // Requests that came before the FIN may still be waiting to be taken.
        if keepOpen { pump() }
        return keepOpen && transport?.isOpen == true
    }

    func writabilityChanged(_ writable: Bool) {
        inFlight?.transportWritabilityChanged(writable)
    }

    func outputFlushed(remaining: Int) {
        machine.outputFlushed(remaining: remaining, now: reactor.wokeAt)
        pump()
    }

    func connectionLost(_ reason: ConnectionLossReason) {
        timer?.cancel()
        timer = nil
        armedDeadline = 0
        machine.connectionLost()
        transport = nil
        let writer = inFlight
        inFlight = nil
        spareWriter = nil
        writer?.clientGone()
        server.connectionClosed(self)
    }

    // MARK: running the machine

    /// Requests one connection may have dispatched in one turn of the loop before the others get theirs: a client
    /// pipelining thousands of requests (and reading its answers) is served in slices, not in one long turn that
    /// holds up every other connection of the thread.
    static let requestsPerTurn = 32
    /// Requests dispatched since bytes last arrived (or the deferred rest resumed): a turn's share, give or take
    /// the few reads a turn makes, counted without reading the clock per request.
    @exclusivity(unchecked) private var dispatchedThisTurn = 0
    /// The rest of this connection's pipelined requests waits for the next turn.
    @exclusivity(unchecked) private var resumeScheduled = false

    /// Performs the machine's actions until it waits (or this turn's share of requests is spent), then brings the
    /// transport and the timer in line with it.
    private func pump() {
        guard !pumping else { return }
        guard !resumeScheduled else {
            // Bytes that came meanwhile may have filled what the machine holds: reading pauses now, not next turn.
            synchronise()
            return
        }
        pumping = true
        while transport != nil {
            if dispatchedThisTurn >= Self.requestsPerTurn {
                resumeScheduled = true
                // Deferred calls run after the turn's other ready connections have been served.
                reactor.callSoon { [self] in
                    resumeScheduled = false
                    dispatchedThisTurn = 0
                    pump()
                }
                break
            }
            guard let action = machine.nextAction(now: reactor.wokeAt) else { break }
            if case .dispatch = action { dispatchedThisTurn += 1 }
            perform(action)
        }
        pumping = false
        // Idle since its last answer (a stream's too): stray bytes that come and go (empty lines) do not make a
        // connection younger.
        if answered {
            answered = false
            if machine.state == .idle {
                idleSince = reactor.wokeAt
                if server.isNearCapacity { server.evictIdleConnections() }
            }
        }
        synchronise()
    }

    private func perform(_ action: HTTPConnectionAction) {
        switch action {
        case .dispatch:
            dispatch(machine.takeRequest())
        case .sendContinue:
            Self.continueBytes.withUnsafeBytes { write($0) }
        case .reject:
            guard let error = machine.refusal else { return }
            if error.status == .requestTimeout { server.stats.timeouts += 1 } else { server.stats.rejectedRequests += 1 }
            let writer = HTTPResponseWriter(connection: self)
            inFlight = writer
            writer.respond(status: error.status, json: .error(Self.errorCode(error.status), error.message), closeAfter: true)
        case .close:
            transport?.close()
        case .shutdownWrite:
            transport?.shutdownWrite()
        case .reset:
            transport?.abort()
        case .measureUnsent:
            guard let transport, transport.isOpen else { return }
            if let next = machine.unsentMeasured(Socket.unsentBytes(transport.fd), sent: transport.bytesSent, now: reactor.now) {
                // A reset is a send that stalled; a close is an expired linger with everything delivered.
                if case .reset = next { server.stats.sendTimeouts += 1 }
                perform(next)
            }
        }
    }

    private func synchronise() {
        guard let transport else { return }
        let wantsToRead = machine.wantsToRead
        if wantsToRead == readingPaused {
            readingPaused = !wantsToRead
            if wantsToRead { transport.resumeReading() } else { transport.pauseReading() }
        }
        // One timer per connection, moved only when the deadline comes sooner; a later deadline is picked up when
        // the timer fires early. No timer churn per request.
        let deadline = machine.deadline
        if deadline != 0 && (armedDeadline == 0 || deadline < armedDeadline) {
            timer?.cancel()
            armedDeadline = deadline
            // Unowned: connectionLost cancels the timer before the connection can go, and a weak capture would
            // give every connection a side table, slowing each retain and release on the request path.
            timer = reactor.callAt(deadline: deadline) { [unowned self] in self.timerFired() }
        }
    }

    private func timerFired() {
        armedDeadline = 0
        timer = nil
        guard let transport, transport.isOpen else { return }
        if let action = machine.deadlineReached(now: reactor.now) {
            if case .reset = action { server.stats.sendTimeouts += 1 }
            perform(action)
        }
        pump()
    }

    private static let continueBytes = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// Consuming: the head and body move into the request, no copy of either.
    private func dispatch(_ request: consuming HTTPRequest) {
        server.stats.requests += 1
        // A second request means answers back to back, which Nagle could hold until the client's delayed ACK.
        if machine.requestsStarted == 2 { needsNoDelay() }
        let writer: HTTPResponseWriter
        if spareWriter != nil, isKnownUniquelyReferenced(&spareWriter!) {
            writer = spareWriter.unsafelyUnwrapped
            writer.reuse(connection: self, version: request.head.version, keepAlive: request.head.keepAlive, isHead: request.head.isHead)
        } else {
            writer = HTTPResponseWriter(connection: self, version: request.head.version, keepAlive: request.head.keepAlive,
                                        isHead: request.head.isHead)
        }
        spareWriter = nil
        inFlight = writer
        server.handler(consume request, writer)
    }

    // MARK: for the writer

    /// The writer started a streamed response.
    func responseStarted() {
        machine.responseStarted(now: reactor.wokeAt)
        synchronise()
    }

    /// The writer's response is complete.
    func responseFinished(_ writer: HTTPResponseWriter, keepAlive: Bool) {
        guard inFlight === writer else { return }
        inFlight = nil
        spareWriter = writer
        answered = true
        machine.responseComplete(keepAlive: keepAlive, outputBuffered: transport?.bufferedBytes ?? 0, now: reactor.wokeAt)
        pump()
    }

    /// Turns Nagle's algorithm off for the rest of the connection (streams, responses in several writes, pipelining).
    func needsNoDelay() {
        transport?.setNoDelay()
    }

    func write(_ bytes: UnsafeRawBufferPointer) {
        guard let transport else { return }
        transport.write(bytes)
        // What the transport could not hand to the kernel starts (or feeds) the send deadline and the backpressure
        // marks; a write from outside the machine's loop (a stream's event) arms the timer and pauses reading itself.
        let buffered = transport.bufferedBytes
        guard buffered > 0 else { return }
        machine.outputQueued(buffered, now: reactor.wokeAt)
        if !pumping { synchronise() }
    }

    var isTransportWritable: Bool { transport?.isWritable ?? false }
    var isOpen: Bool { transport?.isOpen ?? false }

    func abort() {
        transport?.abort()
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

    // MARK: for the server

    /// The server is stopping: idle connections close now, busy ones after `finishing` ends their response.
    func shutdown(finishing: (HTTPResponseWriter) -> Void) {
        if let writer = inFlight {
            finishing(writer)
        } else if let action = machine.stop(now: reactor.wokeAt) {
            perform(action)
            synchronise()
        }
    }

    /// Closes an idle connection to make room for new ones; false if it was not idle.
    func evict() -> Bool {
        guard isIdleKeepAlive, let action = machine.stop(now: reactor.wokeAt) else { return false }
        wasEvicted = true
        perform(action)
        synchronise()
        return true
    }

    @exclusivity(unchecked) private(set) var wasEvicted = false
}
