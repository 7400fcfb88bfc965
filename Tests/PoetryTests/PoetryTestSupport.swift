#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Poetry
import Reactor
import Synchronization

/// The project's root, found from this file's path, for the poems and the built `poetry` binary.
let projectRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

func poem(_ name: String) -> [UInt8] {
    try! PoemCatalog.read(path: "\(projectRoot)/poetry/\(name).txt")
}

/// A reactor on its own thread serving poems (and misbehaving on request), for tests whose client side blocks
/// the test thread. Everything it owns is touched only on its own thread; the rest is a lock and a semaphore.
final class ServerFarm: @unchecked Sendable {
    enum Kind: Sendable {
        case poem([UInt8], numBytes: Int, delay: Double)
        /// Sends `bytes` bytes of `poem` then resets the connection.
        case resetAfter([UInt8], bytes: Int)
        /// Accepts and never sends.
        case stall
    }

    let reactor: Reactor
    private let ready = DispatchSemaphore(value: 0)
    private let ports = Locked<[UInt16]>([])
    private var thread: Thread?
    private var keep: [AnyObject] = []

    init(_ kinds: [Kind], backend: BackendKind = .epoll) throws {
        reactor = try Reactor(backend: backend)
        let thread = Thread { [self] in
            var bound: [UInt16] = []
            for kind in kinds { bound.append(try! self.start(kind)) }
            ports.withLock { $0 = bound }
            ready.signal()
            try! reactor.run()
            keep.removeAll()
        }
        self.thread = thread
        thread.start()
        ready.wait()
    }

    var boundPorts: [UInt16] { ports.withLock { $0 } }

    private func start(_ kind: Kind) throws -> UInt16 {
        let any = try SocketAddress(host: "127.0.0.1", port: 0)
        switch kind {
        case .poem(let bytes, let numBytes, let delay):
            let server = try AsyncPoetryServer(reactor: reactor, config: PoetryServerConfig(poem: bytes, address: any, numBytes: numBytes, delay: delay))
            keep.append(server)
            return server.port
        case .resetAfter(let bytes, let count):
            let listener = try TCPListener(reactor: reactor, address: any) { [unowned reactor] fd in
                let sender = OneShot(reply: Array(bytes.prefix(count)), then: .reset)
                _ = try? TCPConnection(reactor: reactor, fd: fd, handler: sender)
            }
            keep.append(listener)
            return listener.port
        case .stall:
            let listener = try TCPListener(reactor: reactor, address: any) { [unowned reactor, unowned self] fd in
                if let connection = try? TCPConnection(reactor: reactor, fd: fd, handler: OneShot(reply: [], then: .stay)) {
                    self.keep.append(connection)
                }
            }
            keep.append(listener)
            return listener.port
        }
    }

    func stop() {
        reactor.stop()
        while thread?.isFinished == false { usleep(1000) }
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
func runAsyncFetch(_ tasks: [FetchTask], backend: BackendKind = .epoll, timeout: Double? = 5) throws -> [FetchEvent] {
    let reactor = try Reactor(backend: backend)
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
}
