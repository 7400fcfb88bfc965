import ArgumentParser
import Gateway
import HTTP1
import HTTPServer
import Poetry
import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// `poetry gateway`: the HTTP API and page. Also what `poetry` runs with no subcommand.
struct GatewayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Serve the HTTP API and page that start poetry servers and stream fetches live.",
        discussion: "Open the printed URL in a browser, or fetch with curl -N. SIGINT/SIGTERM/SIGHUP stop it in order; a second one exits at once."
    )

    @Option(help: "Address to listen on. Outside loopback, --token is required.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port).")
    var port = 8080

    @Option(help: "Reactor backend.")
    var reactor: BackendKindArgument = .default

    // Unconditional: "-1" is a value to refuse by name, not a missing one.
    @Option(parsing: .unconditional, help: "Reactor threads sharing the port (SO_REUSEPORT); the kernel spreads the connections among them. Default: one per available core, at most 64.")
    var threads: Int?

    @Option(help: "Directory of poems (NAME.txt). Default: the package's own poetry/, found beside the executable.")
    var poetryDir: String?

    @Option(help: "Directory of the page and static files. Default: the package's own public/, found beside the executable.")
    var publicDir: String?

    @Flag(help: "Also start the seed's three servers and print the curl line that fetches from them.")
    var demo = false

    @Option(help: "Seconds between sends for the --demo servers.")
    var demoDelay = 0.1

    @Flag(help: "Let fetches reach addresses outside loopback.")
    var allowRemoteTargets = false

    @Flag(help: "Let started servers listen outside loopback.")
    var allowRemoteServers = false

    @Option(help: "Bearer token required on POST/DELETE, and off loopback on every /api/ request and /metrics (default: $POETRY_GATEWAY_TOKEN).")
    var token: String?

    @Option(help: ArgumentHelp("A name Host and Origin may carry besides localhost, the loopback addresses and --host: a reverse proxy's public name (repeatable; *.example.org allowed).", valueName: "name"))
    var allowedHost: [String] = []

    @Flag(help: "Off loopback, serve /metrics without the token.")
    var metricsPublic = false

    @Option(help: "Most poetry servers running at once.")
    var maxServers = 64

    @Option(help: "Most targets in one fetch.")
    var maxTargets = 1000

    @Option(help: "Most fetch streams open at once.")
    var maxStreams = 20_000

    @Option(help: "Most fetch threads at once: a blocking fetch holds one, a threaded fetch one per target.")
    var maxBlockingFetches = 64

    @Option(help: "Seconds a fetch task may wait for a connection or data before it fails.")
    var fetchTimeout = 10.0

    @Option(help: "Most bytes one fetch task may receive; a target that sends more fails that task.")
    var maxPoemBytes = FetchLimits.defaultMaxPoemBytes

    @Option(help: "Most bytes of poem text all fetches together keep at once; beyond it, done events carry no text.")
    var maxKeptPoemBytes = 16 * 1024 * 1024

    @Option(help: "Seconds one fetch task may take in all, however steadily its target trickles.")
    var fetchDeadline = 120.0

    @Option(help: "Most HTTP connections at once, each reactor thread taking an equal share (accepting pauses beyond; from 90% idle keep-alive connections are closed, oldest first).")
    var maxConnections = 10_000

    @Option(help: "Seconds a client has to send a request head (and how long a connection that sends nothing lives).")
    var headerTimeout = 10.0

    @Option(help: "Seconds an idle keep-alive connection stays open.")
    var idleTimeout = 60.0

    @Option(help: "Seconds a client has to send a request body once its head arrived.")
    var bodyTimeout = 30.0

    @Option(help: "Seconds a client may accept no byte of a pending answer before the connection is reset.")
    var sendTimeout = 60.0

    @Option(help: "Largest request head in bytes.")
    var maxHeaderBytes = 32 * 1024

    @Option(help: "Most header fields in one request (more gets 431).")
    var maxHeaderFields = HTTPLimits().maxHeaderCount

    @Option(help: "Largest request body in bytes.")
    var maxBodyBytes = 1024 * 1024

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535.") }
        if let threads {
            guard ReactorThreadCount.allowed.contains(threads) else { throw ValidationError(ReactorThreadCount.outOfRange) }
            // Each thread takes an equal share of the connection cap, at least one connection.
            guard threads <= maxConnections else { throw ValidationError("--threads must not exceed --max-connections (each thread takes a share of it).") }
        }
        guard maxPoemBytes > 0 else { throw ValidationError("--max-poem-bytes must be positive.") }
        guard maxKeptPoemBytes > 0 else { throw ValidationError("--max-kept-poem-bytes must be positive.") }
        guard fetchDeadline > 0, fetchDeadline.isFinite else { throw ValidationError("--fetch-deadline must be a positive number of seconds.") }
        guard maxServers > 0, maxTargets > 0, maxStreams > 0, maxBlockingFetches > 0, maxConnections > 0, maxHeaderFields > 0 else {
            throw ValidationError("limits must be positive.")
        }
        guard headerTimeout > 0, idleTimeout > 0, bodyTimeout > 0, sendTimeout > 0, fetchTimeout > 0 else { throw ValidationError("timeouts must be positive.") }
    }

    func run() throws {
        var config = GatewayConfig()
        config.host = host
        config.port = UInt16(port)
        config.backend = reactor.kind
        config.threads = threads ?? min(ReactorThreadCount.perCore, maxConnections)
        do throws(PackageFolders.Failure) {
            (config.poetryDirectory, config.publicDirectory) = try PackageFolders.locate(poetry: poetryDir, public: publicDir)
        } catch {
            throw CommandFailure(message: "poetry gateway: \(error.message)")
        }
        config.allowRemoteTargets = allowRemoteTargets
        config.allowRemoteServers = allowRemoteServers
        config.token = token ?? getenv("POETRY_GATEWAY_TOKEN").map { String(cString: $0) }
        config.maxServers = maxServers
        config.maxTargets = maxTargets
        config.maxStreams = maxStreams
        config.maxBlockingFetches = maxBlockingFetches
        config.fetchTimeout = fetchTimeout
        config.fetchDeadline = fetchDeadline
        config.maxPoemBytes = maxPoemBytes
        config.maxKeptPoemBytes = maxKeptPoemBytes
        config.allowedHosts = allowedHost
        config.metricsPublic = metricsPublic
        config.http.maxConnections = maxConnections
        config.http.headerTimeout = headerTimeout
        config.http.idleTimeout = idleTimeout
        config.http.bodyTimeout = bodyTimeout
        config.http.sendTimeout = sendTimeout
        config.http.limits.maxHeaderBytes = maxHeaderBytes
        config.http.limits.maxBodyBytes = maxBodyBytes
        config.http.limits.maxHeaderCount = maxHeaderFields
        let gateway: Gateway
        do {
            gateway = try Gateway(config: config)
        } catch {
            throw CommandFailure(message: "poetry gateway: \(error.message)")
        }
        Console.out("Poetry gateway on \(gateway.url) (reactor: \(reactor.kind), \(gateway.threads == 1 ? "1 thread" : "\(gateway.threads) threads"))")
        if reactor.kind == .select {
            // Said up front rather than discovered at the thousandth client.
            Console.out("Note: select watches only descriptors below \(FD_SETSIZE): connections and fetches past about a thousand are refused; poll and epoll have no such limit.")
        }
        let descriptors = Gateway.descriptorLimit
        if maxConnections + 64 > descriptors {
            // Said up front: the cap cannot be reached, and fetches share what is left.
            Console.out("Note: --max-connections \(maxConnections) does not fit in this process's descriptor limit (\(descriptors), ulimit -n); connections stop being accepted at about that many, and fetches may hold \(gateway.fetchSocketBudget) sockets.")
        }
        if let token = config.token, !token.isEmpty {
            // The fragment hands the token to the page without sending it anywhere.
            Console.out("Open \(gateway.url)#token=\(token) in a browser; changes need Authorization: Bearer <token>")
        } else {
            Console.out("Open \(gateway.url) in a browser, or: curl -N '\(gateway.url)api/poems'")
        }
        if demo {
            do {
                let ports = try gateway.startDemoServers(delay: demoDelay)
                // A bare port means 127.0.0.1; on an IPv6 gateway the servers are on ::1, which localhost reaches.
                let onIPv6 = gateway.config.serverInterface == "::1"
                let targets = ports.map { onIPv6 ? "localhost:\($0)" : String($0) }.joined(separator: ",")
                Console.out("Demo servers (ecstasy, fascination, science) on ports \(ports.map(String.init).joined(separator: ", ")). Fetch them:")
                Console.out("  curl -N '\(gateway.url)api/fetch?mode=async&targets=\(targets)'")
                Console.out("  curl -N '\(gateway.url)api/fetch?mode=blocking&targets=\(targets)'")
            } catch {
                throw CommandFailure(message: "poetry gateway: \(error.message)")
            }
        }
        do {
            try gateway.run()
        } catch {
            throw CommandFailure(message: "poetry gateway: \(error.message)")
        }
        Console.out("Gateway stopped.")
    }
}
