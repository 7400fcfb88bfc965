import Reactor

/// The reactor edition of the slow poetry server: any number of clients at once, each paced by timers set by
/// deadline (send k goes at connect time + k × delay), so sends do not drift later as load grows.
public final class AsyncPoetryServer {
    public let config: PoetryServerConfig
    private let reactor: Reactor
    private var listener: TCPListener?
    private var senders: [ObjectIdentifier: PoemSender] = [:]
    private let observer: (PoetryServerEvent) -> Void
    public private(set) var clientsServed = 0
    /// How late each timed send was against its deadline.
    public var pacing: LatencyHistogram { pacingRecorder.histogram }
    private let pacingRecorder = PacingRecorder()
    /// Clients connected right now.
    public var activeClients: Int { senders.count }

    /// `sharingPort`: listen with SO_REUSEPORT, so servers on several reactor threads can share one port.
    public init(reactor: Reactor, config: PoetryServerConfig, sharingPort: Bool = false,
                observer: @escaping (PoetryServerEvent) -> Void = { _ in }) throws(ReactorError) {
        self.reactor = reactor
        self.config = config
        self.observer = observer
        listener = try TCPListener(reactor: reactor, address: config.address, backlog: 4096, reusePort: sharingPort) { [unowned self] fd in
            self.accept(fd)
        }
    }

    public var port: UInt16 { listener?.port ?? 0 }
    public var localAddress: SocketAddress? { listener?.localAddress }

    private func accept(_ fd: Int32) {
        let sender = PoemSender(server: self, config: config, pacing: pacingRecorder)
        senders[ObjectIdentifier(sender)] = sender
        do {
            _ = try TCPConnection(reactor: reactor, fd: fd, handler: sender)
        } catch {
            senders[ObjectIdentifier(sender)] = nil
        }
    }

    /// Stops listening and drops every client mid-poem.
    public func close() {
        listener?.close()
        listener = nil
        for sender in senders.values { sender.abort() }
        senders.removeAll()
    }

    fileprivate func started(_ sender: PoemSender, peer: SocketAddress?) {
        clientsServed += 1
        if let peer { observer(.clientConnected(peer)) }
    }

    fileprivate func ended(_ sender: PoemSender, peer: SocketAddress?, reason: ConnectionLossReason, complete: Bool) {
        senders[ObjectIdentifier(sender)] = nil
        guard let peer else { return }
        observer(complete ? .clientFinished(peer) : .clientLeft(peer, reason: reason.description))
    }

    fileprivate var reactorForSenders: Reactor { reactor }
}

/// Shared by a server and its senders, so a send records its lateness without reaching for the server.
private final class PacingRecorder {
    var histogram = LatencyHistogram()
}

/// Sends one client its poem, one slice per timer tick.
private final class PoemSender: ConnectionHandler {
    /// Weak: a closed server may be gone before its clients' last callbacks arrive. Only the first and last
    /// callbacks use it; each send needs only what is copied here.
    weak var server: AsyncPoetryServer?
    private let config: PoetryServerConfig
    private let pacing: PacingRecorder
    private unowned let reactor: Reactor
    private var connection: TCPConnection?
    private var offset = 0
    private var tick = 0
    private var start: UInt64 = 0
    private var timer: TimerHandle?
    private var peer: SocketAddress?

    init(server: AsyncPoetryServer, config: PoetryServerConfig, pacing: PacingRecorder) {
        self.server = server
        self.config = config
        self.pacing = pacing
        self.reactor = server.reactorForSenders
    }

    func connectionMade(_ connection: TCPConnection) {
        self.connection = connection
        peer = connection.peer
        start = MonotonicClock.now()
        server?.started(self, peer: peer)
        sendNext()
    }

    private func sendNext() {
        guard let connection, connection.isOpen else { return }
        if offset >= config.poem.count {
            connection.close()
            return
        }
        let end = min(offset + config.numBytes, config.poem.count)
        config.poem.withUnsafeBytes { connection.write(UnsafeRawBufferPointer(rebasing: $0[offset..<end])) }
        offset = end
        tick += 1
        // The close, like the seed's, comes one delay after the last send.
        let deadline = start &+ UInt64(tick) &* MonotonicClock.nanoseconds(fromSeconds: config.delay)
        // Unowned: connectionLost and abort cancel the timer first.
        timer = reactor.callAt(deadline: deadline) { [unowned self] in
            pacing.histogram.record(nanoseconds: MonotonicClock.now() &- deadline)
            sendNext()
        }
    }

    func abort() {
        timer?.cancel()
        connection?.abort()
    }

    func dataReceived(_ bytes: UnsafeRawBufferPointer) {}

    func connectionLost(_ reason: ConnectionLossReason) {
        timer?.cancel()
        connection = nil
        guard let server else { return }
        let complete = offset >= config.poem.count && reason == .done
        server.ended(self, peer: peer, reason: reason, complete: complete)
    }
}
