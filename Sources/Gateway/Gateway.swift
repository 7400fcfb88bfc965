#if canImport(Glibc)
import Glibc
#endif
import HTTP1
import HTTPServer
import Logging
import Poetry
import Reactor

/// The product: one reactor serving the HTTP API and page, running the poetry servers it was asked to start, and
/// streaming fetches from them. Everything here runs on the reactor thread.
public final class Gateway {
    public let config: GatewayConfig
    public let reactor: Reactor
    let http: HTTPServer
    let router = Router()
    let registry: ServerRegistry
    let metrics = Metrics()
    let catalogDirectory: String
    private let staticFiles: StaticFiles
    private var sessions: [Int: FetchSession] = [:]
    /// What every async fetch together may keep of its poems' text (`--max-kept-poem-bytes`).
    private let textBudget: PoemTextBudget
    /// Sockets all fetches together may hold (`fetchSocketBudget(for:)`).
    public let fetchSocketBudget: Int
    private var nextSessionID = 1
    private let policy: AccessPolicy
    private let logger: Logger
    private var shuttingDown = false

    /// Binds the listening socket (so a port in use fails here) on a new reactor.
    public init(config: GatewayConfig, logger: Logger = Logger(label: "gateway")) throws(GatewayStartError) {
        self.config = config
        textBudget = PoemTextBudget(bytes: config.maxKeptPoemBytes)
        fetchSocketBudget = Self.fetchSocketBudget(for: config)
        self.logger = logger
        do {
            reactor = try Reactor(backend: config.backend)
        } catch {
            throw GatewayStartError(message: error.description)
        }
        let address: SocketAddress
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
        registry = ServerRegistry(reactor: reactor, maxServers: config.maxServers)
        catalogDirectory = config.poetryDirectory
        staticFiles = StaticFiles(root: config.publicDirectory)
        do {
            // The real handler needs `self`; it is set once the server exists, below.
            http = try HTTPServer(reactor: reactor, address: address, config: config.http, logger: logger) { _, writer in
                writer.respond(status: .serviceUnavailable, json: .error("starting", "the gateway is starting"))
            }
        } catch {
            throw GatewayStartError(message: "cannot listen on \(address): \(error)")
        }
        policy = AccessPolicy(loopbackOnly: config.isLoopbackOnly,
                              hosts: HostAllowList(boundHost: config.host, port: http.port, allowedHosts: config.allowedHosts),
                              token: config.token, metricsPublic: config.metricsPublic)
        installRoutes()
        metrics.routeNames = router.routes.map(\.pattern)
        http.setHandler { [unowned self] request, writer in self.handle(request, writer) }
        http.onResponse = { [metrics] status, tag in metrics.countRequest(tag: tag, status: status.code) }
    }

    public var port: UInt16 { http.port }

    /// The process's descriptor limit now (RLIMIT_NOFILE's soft limit).
    public static var descriptorLimit: Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return limit.rlim_cur > rlim_t(Int.max / 4) ? Int.max / 4 : Int(limit.rlim_cur)
    }

    /// What fetches may hold: the descriptor limit less the HTTP connections' share (at most half of it), the
    /// poetry servers' listeners and their clients, and a margin; never less than one fetch's worth of 16.
    static func fetchSocketBudget(for config: GatewayConfig) -> Int {
        let limit = descriptorLimit
        return max(16, limit - min(config.http.maxConnections, limit / 2) - 2 * config.maxServers - 64)
    }
    public var url: String {
        let host = config.host.contains(":") ? "[\(config.host)]" : config.host
        return "http://\(host):\(port)/"
    }

    // MARK: requests

    private func handle(_ request: HTTPRequest, _ writer: HTTPResponseWriter) {
        let match = router.match(method: request.method, path: request.path)
        let route: Int
        switch match {
        case .route(let index, _): route = index
        case .methodNotAllowed(_, let pattern): route = router.routes.firstIndex { $0.pattern == pattern } ?? -1
        case .unmatched: route = -1
        }
        writer.setTag(metrics.tag(route: route, method: request.method))
        guard Self.isKnownMethod(request.method) else {
            writer.respond(status: .notImplemented, json: .error("not_implemented", "method \(request.method) is not implemented"))
            return
        }
        if let refusal = policy.check(request) {
            refusal.respond(writer)
            return
        }
        router.handle(request, writer, match: match)
    }

    private func installRoutes() {
        router.fallback = { [staticFiles] request, writer in staticFiles.handle(request, writer) }
        router.get("/healthz") { _, _, writer in
            writer.respond(status: .ok, headers: Self.textHeaders, body: Self.okBody)
        }
        router.get("/metrics") { [unowned self] request, _, writer in
            // Prometheus asks for OpenMetrics first; anyone else gets the classic text format.
            let openMetrics = request.headers["Accept"]?.lowercased().contains("application/openmetrics-text") ?? false
            let text = metrics.render(http: http.stats, reactor: reactor.stats, serversRunning: registry.count, openMetrics: openMetrics)
            writer.respond(status: .ok, text: text, contentType: openMetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                                                              : "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/api/reactor") { [unowned self] _, _, writer in
            let stats = reactor.stats
            writer.respond(status: .ok, json: [
                "backend": .string(reactor.backendKind.rawValue),
                "iterations": .int(Int(stats.iterations)),
                "events": .int(Int(stats.eventsDispatched)),
                "blockedSeconds": .double(MonotonicClock.seconds(fromNanoseconds: stats.blockedNanoseconds)),
                "busySeconds": .double(MonotonicClock.seconds(fromNanoseconds: stats.busyNanoseconds)),
                "descriptors": .int(stats.registeredDescriptors),
                "activeFetches": .int(metrics.activeFetches),
                "activeStreams": .int(metrics.activeFetches),  // one stream per fetch; kept for API clients
                "serversRunning": .int(registry.count),
                "openConnections": .int(http.openConnections),
            ])
        }
        router.get("/api/poems") { [unowned self] _, _, writer in
            let catalog = PoemCatalog(directory: catalogDirectory)
            writer.respond(status: .ok, json: .array(catalog.entries.map {
                ["name": .string($0.name), "title": .string($0.title), "bytes": .int($0.bytes)]
            }))
        }
        router.get("/api/servers") { [unowned self] _, _, writer in
            writer.respond(status: .ok, json: .array(registry.all.map(\.json)))
        }
        router.post("/api/servers") { [unowned self] request, _, writer in
            do throws(GatewayError) {
                let server = try startServer(request)
                writer.respond(status: .created, json: server.json, headers: HTTPHeaders([("Location", "/api/servers/\(server.id)")]))
            } catch {
                error.respond(writer)
            }
        }
        router.get("/api/servers/{id}") { [unowned self] _, parameters, writer in
            guard let id = parameters["id"].flatMap(Int.init), let server = registry.servers[id] else {
                return GatewayError.notFound("no server with id \(parameters["id"] ?? "")").respond(writer)
            }
            writer.respond(status: .ok, json: server.json)
        }
        router.delete("/api/servers/{id}") { [unowned self] _, parameters, writer in
            guard let id = parameters["id"].flatMap(Int.init) else {
                return GatewayError.notFound("no server with id \(parameters["id"] ?? "")").respond(writer)
            }
            // Answered once the server has really stopped and its port is free.
            let found = registry.stop(id: id) { writer.respond(status: .noContent) }
            if !found { GatewayError.notFound("no server with id \(id)").respond(writer) }
        }
        router.get("/api/fetch") { [unowned self] request, _, writer in
            do throws(GatewayError) {
                try startFetch(request, writer)
            } catch {
                error.respond(writer)
            }
        }
    }

    private static func isKnownMethod(_ method: String) -> Bool {
        switch method {
        case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS": return true
        default: return false
        }
    }
    private static let textHeaders = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8")])
    private static let okBody = Array("ok\n".utf8)

    private func startServer(_ request: HTTPRequest) throws(GatewayError) -> ManagedServer {
        try ServerRequest.check(contentType: request.headers["Content-Type"], body: request.body)
        let body = try ServerRequest.decode(request.body)
        let (entry, mode, serverConfig) = try body.validated(catalog: PoemCatalog(directory: catalogDirectory),
                                                              allowRemote: config.allowRemoteServers,
                                                              defaultInterface: config.serverInterface)
        let server = try registry.start(poem: entry.name, mode: mode, config: serverConfig)
        logger.info("started \(mode.rawValue) server \(server.id) for \(entry.name) on port \(server.port)")
        return server
    }

    private func startFetch(_ request: HTTPRequest, _ writer: HTTPResponseWriter) throws(GatewayError) {
        guard !shuttingDown else { throw .conflict("the gateway is shutting down") }
        let fetch = try FetchRequest.parse(request, config: config)
        if request.headers["Last-Event-ID"] != nil {
            // An EventSource reconnecting: its stream has ended (a fetch cannot be resumed), and 204 is how the
            // HTML standard tells it to stop instead of running the fetch again.
            writer.respond(status: .noContent)
            return
        }
        if request.method == "HEAD" {
            // The head a GET would stream under, checked the same way, and no fetch: HEAD must not start work.
            writer.startStream(status: .ok, headers: HTTPHeaders([("Content-Type", fetch.format.contentType), ("Cache-Control", "no-cache")]))
            writer.finish()
            return
        }
        guard sessions.count < config.maxStreams else { throw .tooManyStreams(config.maxStreams) }
        // --max-blocking-fetches bounds the threads fetches hold: one per blocking fetch, one per task of a
        // threaded fetch (so a threaded fetch of more targets than that is refused outright).
        if fetch.threadsNeeded > 0 {
            let running = sessions.values.reduce(0) { $0 + $1.threads }
            guard running + fetch.threadsNeeded <= config.maxBlockingFetches else {
                throw .tooManyBlockingFetches(config.maxBlockingFetches)
            }
        }
        // Fetch sockets come out of the same descriptor table as the HTTP connections and the servers' sockets:
        // past a budget fetches are refused (429) rather than let accept and the poetry servers run out.
        let socketsInUse = sessions.values.reduce(0) { $0 + $1.sockets }
        guard socketsInUse + fetch.socketsNeeded <= fetchSocketBudget else {
            throw .tooManyFetchSockets(fetchSocketBudget)
        }
        let id = nextSessionID
        nextSessionID += 1
        let session = FetchSession(id: id, mode: fetch.mode, threads: fetch.threadsNeeded, sockets: fetch.socketsNeeded, format: fetch.format, writer: writer, metrics: metrics) { [unowned self] ended in
            sessions[ended.id] = nil
        }
        sessions[id] = session
        session.start(tasks: fetch.tasks, timeout: fetch.timeout,
                      limits: FetchLimits(maxPoemBytes: config.maxPoemBytes, deadline: config.fetchDeadline),
                      textBudget: textBudget, reactor: reactor)
    }

    // MARK: running

    /// Starts the seed's three servers (ecstasy at 30 bytes, fascination and science at 10, every 0.1 s).
    public func startDemoServers(delay: Double = 0.1) throws(GatewayStartError) -> [UInt16] {
        var ports: [UInt16] = []
        for (poem, numBytes) in [("ecstasy", 30), ("fascination", 10), ("science", 10)] {
            let request = ServerRequest(poem: poem, mode: "async", port: 0, iface: config.serverInterface, numBytes: numBytes, delay: delay)
            do throws(GatewayError) {
                let (entry, mode, serverConfig) = try request.validated(catalog: PoemCatalog(directory: catalogDirectory), allowRemote: false)
                ports.append(try registry.start(poem: entry.name, mode: mode, config: serverConfig).port)
            } catch {
                throw GatewayStartError(message: "cannot start the demo servers: \(error.message)")
            }
        }
        return ports
    }

    /// Runs until SIGINT/SIGTERM/SIGHUP (an orderly shutdown; a second signal exits at once) or `stop()`.
    public func run(handleSignals: Bool = true) throws(GatewayStartError) {
        do {
            if handleSignals {
                try reactor.onSignals { [unowned self] _ in
                    if shuttingDown { exit(0) }
                    shutdown()
                }
            }
            try reactor.run()
        } catch {
            throw GatewayStartError(message: error.description)
        }
    }

    /// Stops accepting, ends every stream with a final event, stops the servers, then stops the loop once the
    /// last bytes are out (at most about a second later).
    public func shutdown() {
        guard !shuttingDown else { return }
        shuttingDown = true
        logger.info("shutting down: \(sessions.count) streams, \(registry.count) servers")
        for session in Array(sessions.values) { session.shutdown() }
        http.shutdown()
        registry.stopAll { [reactor] in
            reactor.callLater(0.05) { reactor.stop() }
        }
        reactor.callLater(1.5) { [reactor] in reactor.stop() }
    }
}

/// Why the gateway could not start, in words for the command line.
public struct GatewayStartError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
