#if canImport(Glibc)
import Glibc
#endif
import HTTP1
import HTTPServer
import Logging
import Poetry
import Reactor

/// One reactor thread of the gateway: its own listener on the shared port, its connections, its fetches and its
/// counters. What the threads share (the fetch limits, the text budget, the servers) is in `GatewaySharedState`;
/// everything here runs on this worker's reactor thread.
final class GatewayWorker {
    let index: Int
    let reactor: Reactor
    let http: HTTPServer
    let router = Router()
    let metrics = Metrics()
    /// Every worker of the gateway, this one included, set once before any of them runs.
    var peers: [GatewayWorkerHandle] = []
    private let shared: GatewaySharedState
    private let config: GatewayConfig
    private let staticFiles: StaticFiles
    private var sessions: [Int: FetchSession] = [:]
    private let policy: AccessPolicy
    private let logger: Logger
    private(set) var shuttingDown = false

    /// Binds this worker's listener (with SO_REUSEPORT when several workers share the port).
    init(index: Int, reactor: Reactor, address: SocketAddress, sharingPort: Bool, http httpConfig: HTTPServerConfig,
         shared: GatewaySharedState, logger: Logger) throws(GatewayStartError) {
        self.index = index
        self.reactor = reactor
        self.shared = shared
        config = shared.config
        self.logger = logger
        staticFiles = StaticFiles(root: shared.config.publicDirectory)
        do {
            // The real handler needs `self`; it is set once the server exists, below.
            http = try HTTPServer(reactor: reactor, address: address, config: httpConfig, reusePort: sharingPort, logger: logger) { _, writer in
                writer.respond(status: .serviceUnavailable, json: .error("starting", "the gateway is starting"))
            }
        } catch {
            throw GatewayStartError(message: "cannot listen on \(address): \(error)")
        }
        let config = shared.config
        policy = AccessPolicy(loopbackOnly: config.isLoopbackOnly,
                              hosts: HostAllowList(boundHost: config.host, port: http.port, allowedHosts: config.allowedHosts),
                              token: config.token, metricsPublic: config.metricsPublic)
        installRoutes()
        metrics.routeNames = router.routes.map(\.pattern)
        http.setHandler { [unowned self] request, writer in self.handle(request, writer) }
        http.onResponse = { [metrics] status, tag in metrics.countRequest(tag: tag, status: status.code) }
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
        router.get("/healthz") { [textHeaders, okBody] _, _, writer in
            writer.respond(status: .ok, headers: textHeaders, body: okBody)
        }
        router.get("/metrics") { [unowned self] request, _, writer in
            // Prometheus asks for OpenMetrics first; anyone else gets the classic text format.
            let openMetrics = request.headers["Accept"]?.lowercased().contains("application/openmetrics-text") ?? false
            gatherFigures { [unowned self] figures in
                let text = metrics.render(figures, serversRunning: shared.servers.count, threads: peers.count, openMetrics: openMetrics)
                writer.respond(status: .ok, text: text, contentType: openMetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                                                                  : "text/plain; version=0.0.4; charset=utf-8")
            }
        }
        router.get("/api/reactor") { [unowned self] _, _, writer in
            gatherFigures { [unowned self] figures in
                let stats = figures.reactor
                writer.respond(status: .ok, json: [
                    "backend": .string(reactor.backendKind.rawValue),
                    "threads": .int(peers.count),
                    "iterations": .int(Int(stats.iterations)),
                    "events": .int(Int(stats.eventsDispatched)),
                    "blockedSeconds": .double(MonotonicClock.seconds(fromNanoseconds: stats.blockedNanoseconds)),
                    "busySeconds": .double(MonotonicClock.seconds(fromNanoseconds: stats.busyNanoseconds)),
                    "descriptors": .int(stats.registeredDescriptors),
                    "activeFetches": .int(figures.activeFetches),
                    "activeStreams": .int(figures.activeFetches),  // one stream per fetch; kept for API clients
                    "serversRunning": .int(shared.servers.count),
                    "openConnections": .int(figures.http.openConnections),
                ])
            }
        }
        router.get("/api/poems") { [unowned self] _, _, writer in
            let catalog = PoemCatalog(directory: config.poetryDirectory)
            writer.respond(status: .ok, json: .array(catalog.entries.map {
                ["name": .string($0.name), "title": .string($0.title), "bytes": .int($0.bytes)]
            }))
        }
        router.get("/api/servers") { [unowned self] _, _, writer in
            shared.servers.use(from: reactor, { registry, done in done(JSON.array(registry.all.map(\.json))) }) { list in
                writer.respond(status: .ok, json: list)
            }
        }
        router.post("/api/servers") { [unowned self] request, _, writer in
            startServer(request, writer)
        }
        router.get("/api/servers/{id}") { [unowned self] _, parameters, writer in
            guard let id = parameters["id"].flatMap(Int.init) else {
                return GatewayError.notFound("no server with id \(parameters["id"] ?? "")").respond(writer)
            }
            shared.servers.use(from: reactor, { registry, done in done(registry.servers[id]?.json) }) { json in
                guard let json else { return GatewayError.notFound("no server with id \(id)").respond(writer) }
                writer.respond(status: .ok, json: json)
            }
        }
        router.delete("/api/servers/{id}") { [unowned self] _, parameters, writer in
            guard let id = parameters["id"].flatMap(Int.init) else {
                return GatewayError.notFound("no server with id \(parameters["id"] ?? "")").respond(writer)
            }
            // Answered once the server has really stopped and its port is free.
            shared.servers.use(from: reactor, { registry, done in
                if !registry.stop(id: id, { done(true) }) { done(false) }
            }) { found in
                if found { writer.respond(status: .noContent) } else { GatewayError.notFound("no server with id \(id)").respond(writer) }
            }
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
    // Each thread's own, not static: retaining one object shared by every thread on each request would move its
    // reference count's cache line between the cores.
    private let textHeaders = HTTPHeaders([("Content-Type", "text/plain; charset=utf-8")])
    private let okBody = Array("ok\n".utf8)

    /// Every worker's figures summed, handed to `done` on this thread: each other worker takes its snapshot on its
    /// own thread and posts it back.
    private func gatherFigures(_ done: @escaping (MetricsSnapshot) -> Void) {
        var figures = snapshot()
        let others = peers.filter { $0.index != index }
        guard !others.isEmpty else { return done(figures) }
        var waiting = others.count
        let collect = LoopConfined { (other: MetricsSnapshot) in
            figures.add(other)
            waiting -= 1
            if waiting == 0 { done(figures) }
        }
        let home = reactor
        for peer in others {
            peer.reactor.execute {
                let figures = peer.worker.snapshot()
                home.execute { collect.value(figures) }
            }
        }
    }

    func snapshot() -> MetricsSnapshot {
        metrics.snapshot(http: http.stats, reactor: reactor.stats)
    }

    private func startServer(_ request: HTTPRequest, _ writer: HTTPResponseWriter) {
        guard !shuttingDown else { return GatewayError.conflict("the gateway is shutting down").respond(writer) }
        let started: (entry: PoemCatalog.Entry, mode: FetchMode, config: PoetryServerConfig)
        do throws(GatewayError) {
            try ServerRequest.check(contentType: request.headers["Content-Type"], body: request.body)
            let body = try ServerRequest.decode(request.body)
            started = try body.validated(catalog: PoemCatalog(directory: config.poetryDirectory),
                                         allowRemote: config.allowRemoteServers, defaultInterface: config.serverInterface)
        } catch {
            return error.respond(writer)
        }
        let (poem, mode, serverConfig) = (started.entry.name, started.mode, started.config)
        let logger = logger
        shared.servers.use(from: reactor, { registry, done in
            do throws(GatewayError) {
                let server = try registry.start(poem: poem, mode: mode, config: serverConfig)
                logger.info("started \(mode.rawValue) server \(server.id) for \(poem) on port \(server.port)")
                done(.success((server.id, server.json)))
            } catch {
                done(.failure(error))
            }
        }) { (result: Result<(id: Int, json: JSON), GatewayError>) in
            switch result {
            case .success(let server):
                writer.respond(status: .created, json: server.json, headers: HTTPHeaders([("Location", "/api/servers/\(server.id)")]))
            case .failure(let error):
                error.respond(writer)
            }
        }
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
        // Streams, fetch threads (a blocking fetch holds one, a threaded fetch one per task, so one of more targets
        // than --max-blocking-fetches is refused outright) and fetch sockets (from the same descriptor table as the
        // HTTP connections and the servers': past the budget a fetch is refused rather than let accept run out)
        // are counted across every reactor thread.
        if let refusal = shared.allowance.reserve(threads: fetch.threadsNeeded, sockets: fetch.socketsNeeded) { throw refusal }
        let id = shared.nextFetchID()
        let allowance = shared.allowance
        let session = FetchSession(id: id, mode: fetch.mode, threads: fetch.threadsNeeded, sockets: fetch.socketsNeeded, format: fetch.format, writer: writer, metrics: metrics) { [unowned self] ended in
            sessions[ended.id] = nil
            allowance.release(threads: ended.threads, sockets: ended.sockets)
        }
        sessions[id] = session
        session.start(tasks: fetch.tasks, timeout: fetch.timeout,
                      limits: FetchLimits(maxPoemBytes: config.maxPoemBytes, deadline: config.fetchDeadline),
                      textBudget: shared.textBudget, reactor: reactor)
    }

    // MARK: stopping

    /// Stops accepting and ends every stream with a final event; `drained` runs once this worker's connections
    /// have all closed, or after `limit` seconds, whichever is first (at once if that was already so: asking
    /// again adds a waiter, never a second shutdown).
    func shutdown(limit: Double = 1.5, drained: @escaping () -> Void) {
        if let waiters = drainWaiters {
            drainWaiters = waiters + [drained]
            return
        }
        if shuttingDown { return drained() }
        shuttingDown = true
        drainWaiters = [drained]
        if !sessions.isEmpty { logger.info("thread \(index): ending \(sessions.count) streams") }
        for session in Array(sessions.values) { session.shutdown() }
        http.shutdown()
        let end = reactor.now &+ MonotonicClock.nanoseconds(fromSeconds: limit)
        func check() {
            guard http.openConnections == 0 || reactor.now >= end else {
                reactor.callLater(0.01, check)
                return
            }
            let waiters = drainWaiters ?? []
            drainWaiters = nil
            for waiter in waiters { waiter() }
        }
        check()
    }

    /// Who waits for a shutdown underway to drain (nil when none is).
    private var drainWaiters: [() -> Void]?

    var activeStreams: Int { sessions.count }
}
