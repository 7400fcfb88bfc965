import HTTP1
import HTTPServer
import Poetry
import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// A slow poetry server the gateway started: async ones run on the gateway's reactor, blocking ones on a thread
/// of their own (they block, which is their point), reporting back through `reactor.execute`.
final class ManagedServer {
    let id: Int
    let poem: String
    let mode: FetchMode
    let config: PoetryServerConfig
    let port: UInt16
    private let asyncServer: AsyncPoetryServer?
    private let blockingServer: BlockingPoetryServer?
    private var threadRunning = false
    /// Waiters for a blocking server's thread to end (DELETE answers once the port is free).
    private var onStopped: [() -> Void] = []
    private var threadEnded = false

    init(id: Int, poem: String, mode: FetchMode, config: PoetryServerConfig, reactor: Reactor) throws(GatewayError) {
        self.id = id
        self.poem = poem
        self.mode = mode
        self.config = config
        switch mode {
        case .async:
            do {
                let server = try AsyncPoetryServer(reactor: reactor, config: config)
                asyncServer = server
                blockingServer = nil
                port = server.port
            } catch {
                throw GatewayError.listen(config.address, error.description, inUse: error.errno == EADDRINUSE)
            }
        case .blocking, .threaded:
            // Servers come in two kinds; `threaded` is a fetch mode that ServerRequest never gives a server.
            do {
                let server = try BlockingPoetryServer(config: config)
                blockingServer = server
                asyncServer = nil
                port = server.port
            } catch {
                throw GatewayError.listen(config.address, error.reason, inUse: error.errno == EADDRINUSE)
            }
        }
    }

    /// Starts a blocking server's thread; async servers are already serving.
    func start(reactor: Reactor) {
        guard let server = blockingServer else { return }
        // Handed to another thread; the box is touched there only to run and then to post back to the reactor.
        let box = LoopConfined(self)
        threadRunning = true
        WorkerThread.start(name: "server-\(id)") {
            server.run { _ in }
            reactor.execute { box.value.blockingThreadEnded() }
        }
    }

    private func blockingThreadEnded() {
        threadEnded = true
        let waiters = onStopped
        onStopped.removeAll()
        for waiter in waiters { waiter() }
    }

    var clients: Int { asyncServer?.clientsServed ?? blockingServer?.clientsServed ?? 0 }

    /// Stops serving; `done` runs on the reactor once the port is closed.
    func stop(_ done: @escaping () -> Void) {
        if let asyncServer {
            asyncServer.close()
            done()
        } else if let blockingServer {
            if threadEnded || !threadRunning {
                done()
            } else {
                onStopped.append(done)
                blockingServer.stop()
            }
        }
    }

    var json: JSON {
        [
            "id": .int(id), "poem": .string(poem), "mode": .string(mode.rawValue),
            "host": .string(config.address.host), "port": .int(Int(port)),
            "numBytes": .int(config.numBytes), "delay": .double(config.delay), "clients": .int(clients),
        ]
    }
}

/// The servers started through the API, by id.
final class ServerRegistry {
    private(set) var servers: [Int: ManagedServer] = [:]
    private var nextID = 1
    let reactor: Reactor
    let maxServers: Int

    init(reactor: Reactor, maxServers: Int) {
        self.reactor = reactor
        self.maxServers = maxServers
    }

    var count: Int { servers.count }
    var all: [ManagedServer] { servers.values.sorted { $0.id < $1.id } }

    func start(poem: String, mode: FetchMode, config: PoetryServerConfig) throws(GatewayError) -> ManagedServer {
        // A request from another reactor thread can arrive after the shutdown stopped every server.
        guard !closed else { throw .conflict("the gateway is shutting down") }
        guard servers.count < maxServers else { throw .tooManyServers(maxServers) }
        let server = try ManagedServer(id: nextID, poem: poem, mode: mode, config: config, reactor: reactor)
        nextID += 1
        servers[server.id] = server
        server.start(reactor: reactor)
        return server
    }

    func stop(id: Int, _ done: @escaping () -> Void) -> Bool {
        guard let server = servers.removeValue(forKey: id) else { return false }
        server.stop(done)
        return true
    }

    /// Set by `stopAll`: no server starts after it.
    private var closed = false

    func stopAll(_ done: @escaping () -> Void) {
        closed = true
        var remaining = servers.count
        guard remaining > 0 else { return done() }
        for server in servers.values {
            server.stop {
                remaining -= 1
                if remaining == 0 { done() }
            }
        }
        servers.removeAll()
    }
}
