import HTTP1

/// Runs an `HTTPConnectionStateMachine` as the server's transport glue does, against a `FakeTransport` and a
/// `ManualClock`: no socket, no real time. The application answers each request at once with `bodySize(path)`
/// bytes, or holds it (`hold`) until the test answers. Every action taken is logged, so two runs can be compared.
public struct ConnectionDriver {
    public var machine: HTTPConnectionStateMachine
    public var transport: FakeTransport
    public let clock: ManualClock
    /// Paths of the requests dispatched, in order.
    public private(set) var dispatched: [String] = []
    /// Statuses of the refusals, in order.
    public private(set) var refused: [Int] = []
    /// Every action, as text.
    public private(set) var log: [String] = []
    /// Body size of the answer to a path.
    public var bodySize: (String) -> Int = { _ in 5 }
    /// Leave requests unanswered (the test calls `answer`).
    public var hold = false
    /// A request dispatched and not yet answered.
    public private(set) var waiting: HTTPRequest?

    public init(config: HTTPConnectionConfig = HTTPConnectionConfig(), room: Int = Int.max, clock: ManualClock = ManualClock()) {
        machine = HTTPConnectionStateMachine(config: config)
        transport = FakeTransport(room: room)
        self.clock = clock
        machine.connectionMade(now: clock.now())
        synchronise()
    }

    public var state: HTTPConnectionStateMachine.State { machine.state }

    /// The client sends `bytes`; the driver reads them only if the machine wants to read (else they wait in the
    /// client's socket, as the kernel would hold them): returns whether they were taken.
    @discardableResult
    public mutating func receive(_ text: String) -> Bool {
        receive(Array(text.utf8))
    }

    @discardableResult
    public mutating func receive(_ bytes: [UInt8]) -> Bool {
        guard !transport.readingPaused, transport.ending == .open || transport.ending == .writeShutDown else { return false }
        machine.bytesReceived(bytes, now: clock.now())
        pump()
        return true
    }

    /// The client half-closes.
    public mutating func peerCloses() {
        if !machine.peerClosedInput() {
            end(.closedAfterFlush)
        }
        pump()
    }

    /// The client reads `count` bytes of what is queued for it.
    public mutating func peerReads(_ count: Int = Int.max) {
        let moved = transport.peerReads(count)
        guard moved > 0 else { return }
        machine.outputFlushed(remaining: transport.queued.count, now: clock.now())
        if transport.queued.isEmpty && transport.ending == .closedAfterFlush { log.append("closed") }
        pump()
    }

    /// Moves the clock on and fires the deadline if it is due, as the connection's timer would.
    public mutating func advance(seconds: Double) {
        clock.advance(seconds: seconds)
        fireDueDeadlines()
    }

    public mutating func fireDueDeadlines() {
        while machine.deadline != 0 && machine.deadline <= clock.now(), transport.ending != .reset {
            guard let action = machine.deadlineReached(now: clock.now()) else { break }
            perform(action)
            pump()
        }
    }

    /// Answers the held request.
    public mutating func answer(keepAlive: Bool = true, bodySize: Int = 5) {
        guard let request = waiting else { return }
        waiting = nil
        respond(to: request, keepAlive: keepAlive && request.head.keepAlive, size: bodySize)
        pump()
    }

    // MARK: the glue

    mutating func pump() {
        while transport.ending != .reset, let action = machine.nextAction(now: clock.now()) {
            perform(action)
        }
        synchronise()
    }

    private mutating func perform(_ action: HTTPConnectionAction) {
        switch action {
        case .dispatch:
            let request = machine.takeRequest()
            log.append("dispatch \(request.path)")
            dispatched.append(request.path)
            if hold {
                waiting = request
            } else {
                respond(to: request, keepAlive: request.head.keepAlive, size: bodySize(request.path))
            }
        case .sendContinue:
            log.append("continue")
            write("HTTP/1.1 100 Continue\r\n\r\n")
        case .reject:
            let error = machine.refusal!
            log.append("reject \(error.status.code)")
            refused.append(error.status.code)
            write("HTTP/1.1 \(error.status.code) \(error.status.reason)\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            machine.responseComplete(keepAlive: false, outputBuffered: transport.queued.count, now: clock.now())
        case .close:
            log.append("close")
            end(.closedAfterFlush)
        case .shutdownWrite:
            log.append("shutdownWrite")
            end(.writeShutDown)
        case .reset:
            log.append("reset")
            end(.reset)
            machine.connectionLost()
        case .measureUnsent:
            log.append("measureUnsent")
            if let next = machine.unsentMeasured(transport.kernelUnsent, sent: UInt64(transport.delivered.count), now: clock.now()) {
                perform(next)
            }
        }
    }

    private mutating func respond(to request: HTTPRequest, keepAlive: Bool, size: Int) {
        write("HTTP/1.1 200 OK\r\nContent-Length: \(size)\r\n\(keepAlive ? "" : "Connection: close\r\n")\r\n")
        write(String(repeating: "x", count: size))
        machine.responseComplete(keepAlive: keepAlive, outputBuffered: transport.queued.count, now: clock.now())
    }

    private mutating func write(_ text: String) {
        transport.write(Array(text.utf8))
        if !transport.queued.isEmpty { machine.outputQueued(transport.queued.count, now: clock.now()) }
    }

    private mutating func end(_ ending: FakeTransport.Ending) {
        if transport.ending == .reset { return }
        transport.ending = ending
    }

    private mutating func synchronise() {
        transport.readingPaused = !machine.wantsToRead
    }
}
