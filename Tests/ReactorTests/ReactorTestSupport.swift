#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Testing

/// Runs `reactor` on this thread until something calls `stop()`, failing the test if that takes longer than
/// `limit` seconds (so a broken test ends instead of hanging CI).
func runUntilStopped(_ reactor: Reactor, limit: Double = 20, sourceLocation: SourceLocation = #_sourceLocation) throws {
    var timedOut = false
    let guardTimer = reactor.callLater(limit) {
        timedOut = true
        reactor.stop()
    }
    try reactor.run()
    guardTimer.cancel()
    #expect(!timedOut, "reactor test did not finish within \(limit)s", sourceLocation: sourceLocation)
}

/// Raises the soft descriptor limit towards the hard one; returns the limit now in force.
@discardableResult
func raiseDescriptorLimit(to wanted: UInt64) -> UInt64 {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    if limit.rlim_cur < wanted {
        limit.rlim_cur = min(rlim_t(wanted), limit.rlim_max)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
    return UInt64(limit.rlim_cur)
}

/// Echoes every byte back.
final class EchoHandler: ConnectionHandler {
    var connection: TCPConnection?
    func connectionMade(_ connection: TCPConnection) { self.connection = connection }
    func dataReceived(_ bytes: UnsafeRawBufferPointer) { connection?.write(bytes) }
    func connectionLost(_ reason: ConnectionLossReason) { connection = nil }
}

/// A server that hands each accepted socket to a fresh handler.
@discardableResult
func listen(_ reactor: Reactor, _ makeHandler: @escaping () -> any ConnectionHandler) throws -> TCPListener {
    // Unowned: the reactor holds the listener, so a strong capture would be a cycle that outlives the test.
    try TCPListener(reactor: reactor, address: SocketAddress(host: "127.0.0.1", port: 0)) { [unowned reactor] fd in
        _ = try? TCPConnection(reactor: reactor, fd: fd, handler: makeHandler())
    }
}

/// A client handler driven by closures, for tests that only care about one or two callbacks.
final class ClientProbe: ConnectionHandler {
    var onMade: (TCPConnection) -> Void = { _ in }
    var onData: (TCPConnection, UnsafeRawBufferPointer) -> Void = { _, _ in }
    var onLost: (ConnectionLossReason) -> Void = { _ in }
    var onFailed: (ConnectError) -> Void = { _ in }
    var onWritability: (Bool) -> Void = { _ in }
    private(set) var connection: TCPConnection?

    func connectionMade(_ connection: TCPConnection) {
        self.connection = connection
        onMade(connection)
    }
    func dataReceived(_ bytes: UnsafeRawBufferPointer) { onData(connection!, bytes) }
    func connectionLost(_ reason: ConnectionLossReason) { onLost(reason) }
    func connectionFailed(_ error: ConnectError) { onFailed(error) }
    func writabilityChanged(_ writable: Bool) { onWritability(writable) }
}

let loopback = try! SocketAddress(host: "127.0.0.1", port: 0)

func address(port: UInt16) -> SocketAddress { try! SocketAddress(host: "127.0.0.1", port: port) }

/// A port that nothing listens on: bound, read, then closed.
func closedPort() -> UInt16 {
    let fd = try! Socket.listen(on: loopback, nonBlocking: false)
    let port = SocketAddress.local(of: fd)!.port
    close(fd)
    return port
}
