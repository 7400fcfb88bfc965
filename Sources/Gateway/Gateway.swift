#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import HTTP1
import HTTPServer
import Logging
import Poetry
import Reactor

/// The product: the HTTP API and page that start poetry servers and stream fetches from them, on `threads` reactor
/// threads sharing one port (SO_REUSEPORT: the kernel spreads the connections among them). Each thread
/// (`GatewayWorker`) has its own listener, connections and fetches; the fetch limits, the text budget and the servers
/// are shared (`GatewaySharedState`). The first thread is the caller's: it runs the servers and takes the signals.
public final class Gateway {
    public let config: GatewayConfig
    let workers: [GatewayWorker]
    let shared: GatewaySharedState
    /// Sockets all fetches together may hold (`fetchSocketBudget(for:)`).
    public let fetchSocketBudget: Int
    private let logger: Logger

    /// Binds every thread's listener (so a port in use fails here), each on a new reactor; `run` starts them.
    public init(config: GatewayConfig, logger: Logger = Logger(label: "gateway")) throws(GatewayStartError) {
        guard config.threads >= 1 else { throw GatewayStartError(message: "a gateway needs at least one reactor thread (threads: \(config.threads))") }
        guard config.threads <= config.http.maxConnections else {
            throw GatewayStartError(message: "--threads \(config.threads) is more than --max-connections \(config.http.maxConnections): each thread needs a share of the connections")
        }
        self.config = config
        fetchSocketBudget = Self.fetchSocketBudget(for: config)
        self.logger = logger
        var address: SocketAddress
        do {
            address = try SocketAddress(host: config.host, port: config.port)
        } catch {
            throw GatewayStartError(message: "invalid --host '\(config.host)': give an IP address such as 127.0.0.1")
        }
        if let problem = config.allowedHosts.lazy.compactMap(HostAllowList.problem(withAllowedHost:)).first {
            throw GatewayStartError(message: problem)
        }
        if !config.isLoopbackOnly && (config.token ?? "").isEmpty {
            throw GatewayStartError(message: "refusing to listen on \(config.host) without --token (or POETRY_GATEWAY_TOKEN): anyone who can reach it could start servers")
        }
        let sharingPort = config.threads > 1
        if sharingPort {
            // The listeners will share the port; make sure no other program has it first (SO_REUSEPORT would
            // otherwise let us share it with a stranger's socket of the same user).
            do {
                address = address.withPort(try Socket.claimPort(address))
            } catch {
                throw GatewayStartError(message: "cannot listen on \(address): \(error)")
            }
        }
        var workers: [GatewayWorker] = []
        var shared: GatewaySharedState?
        for index in 0..<config.threads {
            let reactor: Reactor
            do {
                reactor = try Reactor(backend: config.backend)
            } catch {
                throw GatewayStartError(message: error.description)
            }
            // The servers live on the first thread's reactor.
            let state = shared ?? GatewaySharedState(config: config, fetchSocketBudget: fetchSocketBudget,
                                                     servers: ServerDesk(registry: ServerRegistry(reactor: reactor, maxServers: config.maxServers)))
            shared = state
            // Each thread takes an equal share of the connection cap (the first ones one more, for the remainder),
            // so all together hold exactly the cap.
            var httpConfig = config.http
            let (share, remainder) = config.http.maxConnections.quotientAndRemainder(dividingBy: config.threads)
            httpConfig.maxConnections = share + (index < remainder ? 1 : 0)
            workers.append(try GatewayWorker(index: index, reactor: reactor, address: address, sharingPort: sharingPort,
                                             http: httpConfig, shared: state, logger: logger))
        }
        self.workers = workers
        self.shared = shared!
        let handles = workers.map(GatewayWorkerHandle.init)
        for worker in workers { worker.peers = handles }
    }

    /// The first thread's reactor: the servers', the signals', and the one `run` runs on the caller's thread.
    public var reactor: Reactor { primary.reactor }
    private var primary: GatewayWorker { workers[0] }
    public var port: UInt16 { primary.http.port }
    public var threads: Int { workers.count }
    var router: Router { primary.router }

    /// The process's descriptor limit now (RLIMIT_NOFILE's soft limit).
    public static var descriptorLimit: Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return limit.rlim_cur > rlim_t(Int.max / 4) ? Int.max / 4 : Int(limit.rlim_cur)
    }

    /// What fetches may hold: the descriptor limit less the HTTP connections' share (at most half of it), the
    /// poetry servers' listeners and their clients, each reactor thread's own (epoll, wake-up, listener), and a
    /// margin; never less than one fetch's worth of 16.
    static func fetchSocketBudget(for config: GatewayConfig) -> Int {
        let limit = descriptorLimit
        return max(16, limit - min(config.http.maxConnections, limit / 2) - 2 * config.maxServers - 3 * config.threads - 64)
    }
    public var url: String {
        let host = config.host.contains(":") ? "[\(config.host)]" : config.host
        return "http://\(host):\(port)/"
    }

    // MARK: running

    /// Starts the seed's three servers (ecstasy at 30 bytes, fascination and science at 10, every 0.1 s).
    public func startDemoServers(delay: Double = 0.1) throws(GatewayStartError) -> [UInt16] {
        var ports: [UInt16] = []
        for (poem, numBytes) in [("ecstasy", 30), ("fascination", 10), ("science", 10)] {
            let request = ServerRequest(poem: poem, mode: "async", port: 0, iface: config.serverInterface, numBytes: numBytes, delay: delay)
            do throws(GatewayError) {
                let (entry, mode, serverConfig) = try request.validated(catalog: PoemCatalog(directory: config.poetryDirectory), allowRemote: false)
                let started = shared.servers.local { registry -> Result<UInt16, GatewayError> in
                    do throws(GatewayError) {
                        return .success(try registry.start(poem: entry.name, mode: mode, config: serverConfig).port)
                    } catch {
                        return .failure(error)
                    }
                }
                ports.append(try started.get())
            } catch {
                throw GatewayStartError(message: "cannot start the demo servers: \(error.message)")
            }
        }
        return ports
    }

    /// Runs every thread until SIGINT/SIGTERM/SIGHUP (an orderly shutdown; a second signal exits at once) or
    /// `stop()` on the first thread's reactor (the same orderly shutdown); returns once every thread has stopped.
    public func run(handleSignals: Bool = true) throws(GatewayStartError) {
        var finished: [DispatchSemaphore] = []
        let gateway = LoopConfined(self)
        for worker in workers.dropFirst() {
            let done = DispatchSemaphore(value: 0)
            finished.append(done)
            let (primary, logger, index) = (reactor, logger, worker.index)
            let thread = LoopConfined(worker)
            WorkerThread.start(name: "gateway-\(index)") {
                do {
                    try thread.value.reactor.run()
                } catch {
                    // Its listener would go on taking its share of the connections with no loop to serve them, and
                    // every /metrics would wait for it: close the listener (the loop has returned, so this thread
                    // may) and stop the whole gateway in order.
                    logger.error("reactor thread \(index) failed: \(error); stopping the gateway")
                    thread.value.http.stopAccepting()
                    primary.execute { gateway.value.shutdown() }
                }
                done.signal()
            }
        }
        defer {
            // However the first thread's loop ended (shutdown, or `stop()`), no other thread outlives `run`, and
            // none is cut off before it has ended its streams: each is asked to shut down (nothing new if it
            // already is) and stops its own loop once drained. A bare `stop()` here could overtake the request.
            for peer in primary.peers.dropFirst() {
                peer.reactor.execute { peer.worker.shutdown { peer.reactor.stop() } }
            }
            for done in finished { done.wait() }
            // Work posted to a loop that had already stopped would keep what it captured (a connection, and through
            // it the reactor) alive for good.
            for worker in workers { worker.reactor.discardPostedCalls() }
        }
        do {
            if handleSignals {
                try reactor.onSignals { [unowned self] _ in
                    if primary.shuttingDown { exit(0) }
                    shutdown()
                }
            }
            try reactor.run()
            if !primary.shuttingDown {
                // Stopped by a bare `stop()`: end in order all the same, streams included (a reactor may run again).
                shutdown()
                try reactor.run()
            }
        } catch {
            throw GatewayStartError(message: error.description)
        }
    }

    /// Stops accepting on every thread, ends every stream with a final event, stops the servers, then stops each
    /// loop once its connections have closed (at most about 1.5 s later). Call on the first thread, which stops
    /// last: once its own connections, the servers and every other thread are done.
    public func shutdown() {
        guard !primary.shuttingDown else { return }
        logger.info("shutting down: \(shared.allowance.openStreams) streams, \(shared.servers.count) servers, \(workers.count) threads")
        // Unowned in what is posted and scheduled: left queued on a stopped loop, it must not keep the loop alive.
        unowned let reactor = reactor
        // The first thread's drain, the servers, and each other thread.
        var pending = 2 + workers.count - 1
        let oneDone = LoopConfined {
            pending -= 1
            if pending == 0 { reactor.stop() }
        }
        // The servers stop once every thread has given its streams their final event: stopped sooner, they would
        // cut the poems of streams on threads that have not heard of the shutdown yet, which would then end with
        // a failed fetch instead.
        let servers = shared.servers
        var threadsEndingStreams = workers.count
        let streamsEnded = LoopConfined {
            threadsEndingStreams -= 1
            if threadsEndingStreams == 0 { servers.local { registry in registry.stopAll { oneDone.value() } } }
        }
        for peer in primary.peers.dropFirst() {
            peer.reactor.execute {
                peer.worker.shutdown {
                    peer.reactor.stop()
                    reactor.execute { oneDone.value() }
                }
                // Its streams have had their final event (`shutdown` ends them before it starts draining).
                reactor.execute { streamsEnded.value() }
            }
        }
        primary.shutdown { oneDone.value() }
        streamsEnded.value()
        // Each thread gives up on its slow clients 1.5 s after it hears of the shutdown; this is the backstop.
        reactor.callLater(2) { reactor.stop() }
    }
}

/// Why the gateway could not start, in words for the command line.
public struct GatewayStartError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
