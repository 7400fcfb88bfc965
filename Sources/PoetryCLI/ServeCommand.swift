import ArgumentParser
import Foundation
import Poetry
import Reactor

/// `poetry serve`: the seed's slow poetry server, blocking by default or on the reactor with `--async`.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve one poem slowly: NUM_BYTES every DELAY seconds, then close.",
        discussion: "The blocking edition serves one client at a time, as the seed's server does; --async serves any number at once."
    )

    @Option(help: "Port to listen on (0: the system picks a free one).")
    var port: Int = 0

    @Option(help: "Interface (IP address) to listen on.")
    var iface: String = "localhost"

    // Unconditional: "-1" is a value to refuse by name, not a missing one.
    @Option(parsing: .unconditional, help: "Seconds between sends.")
    var delay: Double = PoetryServerConfig.defaultDelay

    @Option(help: "Bytes per send.")
    var numBytes: Int = PoetryServerConfig.defaultNumBytes

    @Flag(name: .customLong("async"), help: "Serve every client at once on the reactor.")
    var asynchronous = false

    @Option(help: "Reactor backend for --async.")
    var reactor: BackendKindArgument = .default

    @Flag(help: "With --async, print how late the sends were against their deadlines when the server stops.")
    var reportLateness = false

    // Unconditional: "-1" is a value to refuse by name, not a missing one.
    @Option(parsing: .unconditional, help: "With --async, reactor threads sharing the port (SO_REUSEPORT); the kernel spreads the clients among them. Default: one per available core, at most 64.")
    var threads: Int?

    @Argument(help: "The poem to serve, e.g. poetry/ecstasy.txt.")
    var poetryFile: String

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("Port must be between 0 and 65535.") }
        guard numBytes > 0 else { throw ValidationError("--num-bytes must be at least 1.") }
        guard delay >= 0, delay.isFinite else { throw ValidationError("--delay must be zero or more seconds.") }
        if let threads {
            guard ReactorThreadCount.allowed.contains(threads) else { throw ValidationError(ReactorThreadCount.outOfRange) }
            guard threads == 1 || asynchronous else { throw ValidationError("--threads needs --async (the blocking server serves one client at a time).") }
        }
    }

    /// One reactor per core by default: pacing thousands of clients is kernel send work, which one core may not
    /// keep up with (BENCHMARKS.md, server fan-out).
    private var reactorThreads: Int {
        threads ?? (asynchronous ? ReactorThreadCount.perCore : 1)
    }

    func run() throws {
        let poem: [UInt8]
        do {
            poem = try PoemCatalog.read(path: poetryFile)
        } catch {
            throw fail(error.description)
        }
        let address: SocketAddress
        do {
            address = try SocketAddress(host: iface, port: UInt16(port))
        } catch {
            throw fail("Invalid interface '\(iface)': give an IP address such as 127.0.0.1.")
        }
        let config = PoetryServerConfig(poem: poem, address: address, numBytes: numBytes, delay: delay)
        let loop: Reactor
        do {
            loop = try Reactor(backend: asynchronous ? reactor.kind : .default)
        } catch {
            throw fail("\(error)")
        }
        if asynchronous {
            try serveAsync(config, on: loop)
        } else {
            try serveBlocking(config, signals: loop)
        }
    }

    private func listening(_ port: UInt16, threads: Int = 1) {
        // The port stays last on the line: scripts read it from there.
        Console.out("Serving \(poetryFile)\(threads > 1 ? " with \(threads) reactor threads" : "") on port \(port).")
    }

    private func serveAsync(_ config: PoetryServerConfig, on loop: Reactor) throws {
        let pool: AsyncPoetryServerPool
        do {
            pool = try AsyncPoetryServerPool(reactor: loop, config: config, threads: reactorThreads, backend: reactor.kind) { event in
                if let line = event.seedLine { Console.out(line) }
            }
        } catch {
            throw fail(error.description)
        }
        listening(pool.port, threads: pool.threads)
        let report = reportLateness
        try loop.onSignals { _ in
            let pacing = pool.stop()
            if report { Console.err("Pacing: sends \(pacing.summary)") }
            loop.stop()
        }
        try loop.run()
    }

    /// The server blocks its own thread; this thread's reactor only turns SIGINT/SIGTERM into an orderly stop.
    private func serveBlocking(_ config: PoetryServerConfig, signals loop: Reactor) throws {
        let server: BlockingPoetryServer
        do {
            server = try BlockingPoetryServer(config: config)
        } catch {
            throw fail(PoetryServeError(address: config.address, reason: error.reason, errno: error.errno).description)
        }
        listening(server.port)
        let thread = Thread {
            server.run { event in
                if let line = event.seedLine { Console.out(line) }
            }
            loop.stop()
        }
        thread.start()
        try loop.onSignals { _ in server.stop() }
        try loop.run()
    }
}
