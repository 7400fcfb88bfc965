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

    @Option(help: "Reactor backend for --async (select, poll, epoll).")
    var reactor: BackendKindArgument = .default

    @Flag(help: "With --async, print how late the sends were against their deadlines when the server stops.")
    var reportLateness = false

    @Option(help: "With --async, reactor threads sharing the port (SO_REUSEPORT); the kernel spreads the clients among them. Default: one per available core, at most 64.")
    var threads: Int?

    @Argument(help: "The poem to serve, e.g. poetry/ecstasy.txt.")
    var poetryFile: String

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("Port must be between 0 and 65535.") }
        guard numBytes > 0 else { throw ValidationError("--num-bytes must be at least 1.") }
        guard delay >= 0, delay.isFinite else { throw ValidationError("--delay must be zero or more seconds.") }
        if let threads {
            guard (1...64).contains(threads) else { throw ValidationError("--threads must be between 1 and 64.") }
            guard threads == 1 || asynchronous else { throw ValidationError("--threads needs --async (the blocking server serves one client at a time).") }
        }
    }

    /// One reactor per core by default: pacing thousands of clients is kernel send work, which one core may not
    /// keep up with (BENCHMARKS.md, server fan-out).
    private var reactorThreads: Int {
        threads ?? (asynchronous ? min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 64) : 1)
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
        let threads = reactorThreads
        var config = config
        if threads > 1 {
            // The listeners will share the port; make sure no other server has it first.
            let port: UInt16
            do {
                port = try Socket.claimPort(config.address)
            } catch {
                throw fail("Cannot listen on \(config.address): \(error.reason)")
            }
            config.address = (try? SocketAddress(host: iface, port: port)) ?? config.address
        }
        let server: AsyncPoetryServer
        do {
            server = try AsyncPoetryServer(reactor: loop, config: config, sharingPort: threads > 1) { event in
                if let line = event.seedLine { Console.out(line) }
            }
        } catch {
            throw fail("Cannot listen on \(config.address): \(error.reasonText)")
        }
        // With several threads `config.address` already holds the claimed port the extra listeners join.
        let extras = try (1..<threads).map { index in try startReactorThread(index, serving: config) }
        listening(server.port, threads: threads)
        let report = reportLateness
        try loop.onSignals { _ in
            var pacing = server.pacing
            for extra in extras { extra.reactor.stop() }
            for extra in extras {
                extra.finished.wait()
                pacing.merge(extra.pacing.withLock { $0 })
            }
            if report { Console.err("Pacing: sends \(pacing.summary)") }
            server.close()
            loop.stop()
        }
        try loop.run()
    }

    /// One more reactor thread with its own listener on the shared port; the server lives and dies on that thread.
    private func startReactorThread(_ index: Int, serving config: PoetryServerConfig) throws -> ReactorThread {
        let extra: ReactorThread
        do {
            extra = ReactorThread(reactor: try Reactor(backend: reactor.kind))
        } catch {
            throw fail("\(error)")
        }
        let ready = DispatchSemaphore(value: 0)
        let failure = Locked<String?>(nil)
        WorkerThread.start(name: "serve-\(index)") {
            defer { extra.finished.signal() }
            let server: AsyncPoetryServer
            do {
                server = try AsyncPoetryServer(reactor: extra.reactor, config: config, sharingPort: true) { event in
                    if let line = event.seedLine { Console.out(line) }
                }
            } catch {
                failure.withLock { $0 = "Cannot listen on \(config.address): \((error as? ReactorError)?.reasonText ?? "\(error)")" }
                ready.signal()
                return
            }
            ready.signal()
            try? extra.reactor.run()
            extra.pacing.withLock { $0 = server.pacing }
            server.close()
        }
        ready.wait()
        if let message = failure.withLock({ $0 }) { throw fail(message) }
        return extra
    }

    /// The server blocks its own thread; this thread's reactor only turns SIGINT/SIGTERM into an orderly stop.
    private func serveBlocking(_ config: PoetryServerConfig, signals loop: Reactor) throws {
        let server: BlockingPoetryServer
        do {
            server = try BlockingPoetryServer(config: config)
        } catch {
            throw fail("Cannot listen on \(config.address): \(error.reason)")
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

/// A reactor running on a thread of its own for `serve --async --threads`, and what it hands back when stopped.
private final class ReactorThread: Sendable {
    let reactor: Reactor
    let pacing = Locked(LatencyHistogram())
    let finished = DispatchSemaphore(value: 0)

    init(reactor: Reactor) {
        self.reactor = reactor
    }
}

private extension ReactorError {
    /// The system's reason alone ("Address already in use"), as the blocking server words it.
    var reasonText: String {
        if case .system(let error) = self { return error.reason }
        return "\(self)"
    }
}
