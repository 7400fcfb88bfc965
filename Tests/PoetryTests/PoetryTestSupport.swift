#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Poetry
import Reactor
import Synchronization
import TestSupport

func poem(_ name: String) -> [UInt8] {
    try! PoemCatalog.read(path: "\(projectRoot)/poetry/\(name).txt")
}

/// A reactor on its own thread (the shared `BackgroundReactor`) serving poems, and misbehaving on request, for
/// tests whose client side blocks the test thread. What it builds lives on the reactor's thread.
/// @unchecked Sendable: its own fields are set once in `init`; what it built is touched only on the reactor's
/// thread (through `sync`), and emptied by `stop` once that thread has ended.
final class ServerFarm: @unchecked Sendable {
    enum Kind: Sendable {
        case poem([UInt8], numBytes: Int, delay: Double)
        /// Sends `bytes` bytes of `poem` then resets the connection.
        case resetAfter([UInt8], bytes: Int)
        /// Accepts and never sends.
        case stall
    }

    private let loop: BackgroundReactor
    let boundPorts: [UInt16]
    /// What the servers hold on to, touched only on the reactor's thread.
    private final class Keeper { var objects: [AnyObject] = [] }
    private let keeper: Confined<Keeper>

    var reactor: Reactor { loop.reactor }

    init(_ kinds: [Kind], backend: BackendKind = .epoll) throws {
        let loop = try BackgroundReactor(backend: backend, name: "server-farm")
        let keeper = Confined(value: Keeper())
        let reactor = Confined(value: loop.reactor)
        boundPorts = try loop.sync { try kinds.map { try Self.start($0, on: reactor.value, keeper: keeper.value) } }
        self.loop = loop
        self.keeper = keeper
    }

    private static func start(_ kind: Kind, on reactor: Reactor, keeper: Keeper) throws -> UInt16 {
        let any = try SocketAddress(host: "127.0.0.1", port: 0)
        switch kind {
        case .poem(let bytes, let numBytes, let delay):
            let server = try AsyncPoetryServer(reactor: reactor, config: PoetryServerConfig(poem: bytes, address: any, numBytes: numBytes, delay: delay))
            keeper.objects.append(server)
            return server.port
        case .resetAfter(let bytes, let count):
            let listener = try TCPListener(reactor: reactor, address: any) { [unowned reactor] fd in
                let sender = OneShot(reply: Array(bytes.prefix(count)), then: .reset)
                _ = try? TCPConnection(reactor: reactor, fd: fd, handler: sender)
            }
            keeper.objects.append(listener)
            return listener.port
        case .stall:
            let listener = try TCPListener(reactor: reactor, address: any) { [unowned reactor, unowned keeper] fd in
                if let connection = try? TCPConnection(reactor: reactor, fd: fd, handler: OneShot(reply: [], then: .stay)) {
                    keeper.objects.append(connection)
                }
            }
            keeper.objects.append(listener)
            return listener.port
        }
    }

    func stop() {
        loop.stop()
        keeper.value.objects.removeAll()  // the loop has ended: nothing else touches them now
    }
}

/// Writes a reply, then resets or keeps the connection open.
final class OneShot: ConnectionHandler {
    enum Then { case reset, stay }
    let reply: [UInt8]
    let then: Then
    init(reply: [UInt8], then: Then) { self.reply = reply; self.then = then }
    func connectionMade(_ connection: TCPConnection) {
        connection.write(reply)
        if then == .reset {
            connection.reactor.callLater(0.02) { connection.abort() }
        }
    }
    func dataReceived(_ bytes: UnsafeRawBufferPointer) {}
    func connectionLost(_ reason: ConnectionLossReason) {}
}

func tasks(_ ports: [UInt16]) -> [FetchTask] {
    try! FetchTargets.parse(ports.map(String.init))
}

/// Runs an async fetch on a fresh reactor of `backend` on this thread; returns its events.
func runAsyncFetch(_ tasks: [FetchTask], backend: BackendKind = .epoll, waitBatch: WaitBatch? = nil,
                   timeout: Double? = 5) throws -> [FetchEvent] {
    let reactor = try Reactor(backend: backend, waitBatch: waitBatch)
    var events: [FetchEvent] = []
    let fetch = AsyncFetch(reactor: reactor, tasks: tasks, timeout: timeout) { event in
        events.append(event)
        if case .summary = event { reactor.stop() }
    }
    fetch.start()
    reactor.callLater(30) { reactor.stop() }
    try reactor.run()
    return events
}

func runBlockingFetch(_ tasks: [FetchTask], timeout: Double? = 5) -> [FetchEvent] {
    var events: [FetchEvent] = []
    BlockingFetch.run(tasks: tasks, timeout: timeout) { events.append($0) }
    return events
}

func runThreadedFetch(_ tasks: [FetchTask], timeout: Double? = 5) -> [FetchEvent] {
    let events = Mutex<[FetchEvent]>([])
    ThreadedFetch.run(tasks: tasks, timeout: timeout) { event in events.withLock { $0.append(event) } }
    return events.withLock { $0 }
}

/// Runs a fetch of `mode` with the helper above for it.
func runFetch(_ mode: FetchMode, _ tasks: [FetchTask], timeout: Double? = 5) throws -> [FetchEvent] {
    switch mode {
    case .async: return try runAsyncFetch(tasks, timeout: timeout)
    case .blocking: return runBlockingFetch(tasks, timeout: timeout)
    case .threaded: return runThreadedFetch(tasks, timeout: timeout)
    }
}

extension Array where Element == FetchEvent {
    var summary: (poems: Int, failed: Int, elapsed: Double)? {
        for event in self { if case .summary(let p, let f, let e) = event { return (p, f, e) } }
        return nil
    }
    func poem(task: Int) -> [UInt8]? {
        for event in self { if case .finished(task, _, let poem, _) = event { return poem } }
        return nil
    }
    func failure(task: Int) -> String? {
        for event in self { if case .failed(task, let reason, _) = event { return reason } }
        return nil
    }
    func receivedChunks(task: Int) -> [Int] {
        compactMap { if case .received(task, let bytes, _, _) = $0 { return bytes } else { return nil } }
    }
    /// How often consecutive reads came from different tasks: many for interleaved fetches, none for one at a time.
    var taskSwitches: Int {
        var switches = 0
        var last = 0
        for case .received(let task, _, _, _) in self where task != last {
            switches += 1
            last = task
        }
        return switches
    }
}
