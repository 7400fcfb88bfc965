import Logging
import HTTP1
import Reactor

/// Handles one request. Answer through the writer, now or later (on the reactor thread), once.
public typealias HTTPHandler = (HTTPRequest, HTTPResponseWriter) -> Void

/// Counters the gateway's /metrics shows.
public struct HTTPServerStats: Sendable {
    public init() {}
    public var connectionsAccepted = 0
    /// Accepted but closed at once because the reactor could not watch them (select past FD_SETSIZE).
    public var connectionsRefused = 0
    public var openConnections = 0
    public var requests = 0
    public var rejectedRequests = 0
    /// Requests answered 408 (a head or body that did not arrive in time).
    public var timeouts = 0
    /// Connections reset because their client accepted none of the queued output for the send timeout.
    public var sendTimeouts = 0
    /// Idle connections closed to make room when open connections reached 90 % of the cap.
    public var idleConnectionsEvicted = 0

    /// Adds another server's figures to these (several reactor threads reported as one).
    public mutating func add(_ other: HTTPServerStats) {
        connectionsAccepted += other.connectionsAccepted
        connectionsRefused += other.connectionsRefused
        openConnections += other.openConnections
        requests += other.requests
        rejectedRequests += other.rejectedRequests
        timeouts += other.timeouts
        sendTimeouts += other.sendTimeouts
        idleConnectionsEvicted += other.idleConnectionsEvicted
    }
}

// @exclusivity(unchecked) marks hot-path state that is confined to the reactor thread and never accessed in
// overlapping ways (each access is a plain read or write with no call inside it), so the runtime exclusivity
// check, about a sixth of the server's user-space instructions per request (BENCHMARKS.md), guards nothing here.
public final class HTTPServer {
    public let reactor: Reactor
    public let config: HTTPServerConfig
    /// Each connection's state machine configuration, made once.
    let connectionConfig: HTTPConnectionConfig
    @exclusivity(unchecked) private(set) var handler: HTTPHandler
    private var listener: TCPListener?
    /// Open connections, each knowing its index here (`serverIndex`), so adding and removing one is O(1) with no
    /// hashing.
    @exclusivity(unchecked) private var connections: [HTTPServerConnection] = []
    private var pausedForCap = false
    let dateCache = HTTPDateCache()
    /// `Server: …` and its CRLF, made once.
    let serverHeader: [UInt8]
    /// Reused to build every response head and chunk frame on this server: no allocation per response.
    let output = OutputArea(capacity: 16 * 1024)
    @exclusivity(unchecked) public internal(set) var stats = HTTPServerStats()
    /// Called as each response head is written, with its status and the writer's `tag`: one hook for the whole
    /// server, no closure per request.
    @exclusivity(unchecked) public var onResponse: ((_ status: HTTPStatus, _ tag: Int) -> Void)?
    let logger: Logger

    /// `reusePort`: listen with SO_REUSEPORT, so servers on several reactor threads can share one port.
    public init(reactor: Reactor, address: SocketAddress, config: HTTPServerConfig = HTTPServerConfig(), reusePort: Bool = false,
                logger: Logger = Logger(label: "http"), handler: @escaping HTTPHandler) throws(ReactorError) {
        self.reactor = reactor
        self.config = config
        connectionConfig = config.connectionConfig
        evictionThreshold = config.idleEvictionShare >= 1
            ? Int.max : max(1, Int(Double(config.maxConnections) * config.idleEvictionShare))
        self.handler = handler
        self.logger = logger
        serverHeader = Array("Server: \(config.serverName)\r\n".utf8)
        listener = try TCPListener(reactor: reactor, address: address, reusePort: reusePort, logger: logger) { [unowned self] fd in
            self.accept(fd)
        }
    }

    /// Replaces the handler: for an owner that can build its handler only once the server exists.
    public func setHandler(_ handler: @escaping HTTPHandler) {
        self.handler = handler
    }

    public var localAddress: SocketAddress? { listener?.localAddress }
    public var port: UInt16 { listener?.port ?? 0 }
    public var openConnections: Int { connections.count }
    public var isAccepting: Bool { listener?.isAccepting ?? false }

    private func accept(_ fd: Int32) {
        let connection = HTTPServerConnection(server: self)
        connection.serverIndex = connections.count
        connections.append(connection)
        stats.connectionsAccepted += 1
        stats.openConnections = connections.count
        do {
            // Nagle stays on until a connection needs several writes in a row (HTTPServerConnection.needsNoDelay):
            // a one-answer connection then costs one system call less.
            _ = try TCPConnection(reactor: reactor, fd: fd, handler: connection, noDelay: false)
        } catch {
            forget(connection)
            stats.connectionsRefused += 1
            reportRefusal(error)
        }
        if isNearCapacity { evictIdleConnections() }
        if connections.count >= config.maxConnections && !pausedForCap {
            pausedForCap = true
            listener?.pauseAccepting()
        }
    }

    /// From here on, idle connections make room for new ones (nginx, when its connections run low, likewise closes
    /// idle keep-alive connections).
    private let evictionThreshold: Int

    /// Whether idle connections should make room: checked at each accept and whenever a connection goes idle.
    var isNearCapacity: Bool { connections.count - evictionsUnderway >= evictionThreshold }

    /// Closes idle connections, oldest first, until the count is below the threshold by a margin (1 % of the
    /// cap), so the scan runs once per batch rather than once per accept.
    func evictIdleConnections() {
        let target = evictionThreshold - max(1, config.maxConnections / 100)
        let excess = connections.count - evictionsUnderway - target
        guard excess > 0 else { return }
        var idle = connections.filter(\.isIdleKeepAlive)
        guard !idle.isEmpty else { return }
        idle.sort { $0.idleSince < $1.idleSince }
        for connection in idle.prefix(excess) where connection.evict() {
            evictionsUnderway += 1
            stats.idleConnectionsEvicted += 1
        }
    }

    /// Evicted connections not yet gone (their close is reported on the next turn of the loop). Read each time a
    /// connection goes idle, so unchecked like the table.
    @exclusivity(unchecked) private var evictionsUnderway = 0

    /// A flood of connections the reactor cannot watch says so once a second, not once per connection.
    private var refusalLog = LogThrottle()

    private func reportRefusal(_ error: ReactorError) {
        guard let count = refusalLog.admit(now: reactor.wokeAt) else { return }
        logger.warning("closed \(count) new connection(s) the reactor cannot watch: \(error)")
    }

    func connectionClosed(_ connection: HTTPServerConnection) {
        if connection.wasEvicted { evictionsUnderway -= 1 }
        forget(connection)
        if pausedForCap && connections.count < config.maxConnections {
            pausedForCap = false
            listener?.resumeAccepting()
        }
    }

    private func forget(_ connection: HTTPServerConnection) {
        let index = connection.serverIndex
        guard index >= 0, index < connections.count, connections[index] === connection else { return }
        let last = connections.removeLast()
        if index < connections.count {
            connections[index] = last
            last.serverIndex = index
        }
        connection.serverIndex = -1
        stats.openConnections = connections.count
    }

    /// Stops accepting; open connections carry on.
    public func stopAccepting() {
        listener?.close()
        listener = nil
    }

    /// Stops accepting and closes every connection: idle ones at once, busy ones after `finishing` lets each
    /// in-flight response end (e.g. a stream's last event).
    public func shutdown(finishing: (HTTPResponseWriter) -> Void = { $0.abortResponse() }) {
        stopAccepting()
        for connection in connections { connection.shutdown(finishing: finishing) }
    }
}
