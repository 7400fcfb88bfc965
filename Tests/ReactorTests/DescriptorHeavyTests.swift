#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Testing

/// Tests that hold hundreds or thousands of descriptors. They run in a separate `swift test --filter DescriptorHeavy` pass
/// (see scripts/test.sh): in the shared test process they would push other tests' descriptors past select's
/// FD_SETSIZE.
@Suite(.serialized)
struct DescriptorHeavy {
    /// A storm of connects is accepted in batches, one per loop iteration, so timers due meanwhile run between
    /// them instead of waiting for the whole backlog.
    @Test(arguments: BackendKind.allCases)
    func aConnectStormIsAcceptedInBatchesBetweenTimers(backend: BackendKind) throws {
        let reactor = try Reactor(backend: backend)
        let storm = 200
        var acceptsPerIteration: [UInt64: Int] = [:]
        var accepted = 0
        let listener = try TCPListener(reactor: reactor, address: SocketAddress(host: "127.0.0.1", port: 0)) { [unowned reactor] fd in
            acceptsPerIteration[reactor.stats.iterations, default: 0] += 1
            accepted += 1
            close(fd)
            if accepted == storm { reactor.stop() }
        }
        // Every connect completes in the kernel's backlog before the loop runs.
        let clients = (0..<storm).map { _ in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            _ = address(port: listener.port).withSockAddr { connect(fd, $0, $1) }
            return fd
        }
        defer { clients.forEach { close($0) } }
        var ticks = 0
        func tick() {
            ticks += 1
            if accepted < storm { reactor.callLater(0) { tick() } }
        }
        reactor.callLater(0) { tick() }
        try runUntilStopped(reactor)
        #expect(accepted == storm)
        #expect(acceptsPerIteration.values.allSatisfy { $0 <= TCPListener.acceptsPerWakeup }, "\(acceptsPerIteration)")
        #expect(acceptsPerIteration.count >= (storm + TCPListener.acceptsPerWakeup - 1) / TCPListener.acceptsPerWakeup)
        #expect(ticks >= acceptsPerIteration.count, "a timer ran in each iteration with accepts: \(ticks) ticks")
    }

    /// A connect whose socket select cannot watch is reported with the reactor's own reason, not a made-up errno
    /// ("Bad file descriptor" was what a client read).
    @Test func aConnectTheReactorCannotWatchSaysWhy() throws {
        raiseDescriptorLimit(to: 2048)
        let reactor = try Reactor(backend: .select)
        let listenFD = try Socket.listen(on: loopback, nonBlocking: false)
        defer { close(listenFD) }
        let port = SocketAddress.local(of: listenFD)!.port
        // Hold every free number below FD_SETSIZE, so the connector's socket gets one above.
        var holders: [Int32] = []
        defer { holders.forEach { close($0) } }
        while let fd = Optional(fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0)), fd >= 0 {
            if fd >= 1024 { close(fd); break }
            holders.append(fd)
        }
        var failure: ConnectError?
        let probe = ClientProbe()
        probe.onFailed = { failure = $0; reactor.stop() }
        probe.onMade = { _ in reactor.stop() }
        TCPConnection.connect(reactor: reactor, to: address(port: port), handler: probe)
        try runUntilStopped(reactor)
        guard case .unwatchable(.descriptorTooLarge)? = failure else {
            Issue.record("expected select's descriptor limit, got \(String(describing: failure))")
            return
        }
        #expect(failure?.description.contains("FD_SETSIZE") == true)
    }

    @Test(arguments: BackendKind.allCases)
    func fiveHundredConcurrentConnections(backend: BackendKind) throws {
        raiseDescriptorLimit(to: 4096)
        let reactor = try Reactor(backend: backend)
        let server = try listen(reactor) { EchoHandler() }
        let clients = 500
        var finished = 0
        var correct = 0
        for index in 0..<clients {
            let message = Array("client \(index) says hello".utf8)
            var received: [UInt8] = []
            let probe = ClientProbe()
            probe.onMade = { $0.write(message) }
            probe.onData = { connection, bytes in
                received += bytes
                if received.count >= message.count { connection.close() }
            }
            probe.onLost = { _ in
                finished += 1
                if received == message { correct += 1 }
                if finished == clients { reactor.stop() }
            }
            probe.onFailed = { _ in
                finished += 1
                if finished == clients { reactor.stop() }
            }
            TCPConnection.connect(reactor: reactor, to: address(port: server.port), handler: probe)
        }
        try runUntilStopped(reactor, limit: 30)
        #expect(correct == clients)
    }

    @Test func epollHoldsFiveThousandConcurrentConnections() throws {
        let limit = raiseDescriptorLimit(to: 12_000)
        try #require(limit >= 10_100, "need 10,100 descriptors, have \(limit)")
        let reactor = try Reactor(backend: .epoll)
        var accepted: [TCPConnection] = []
        let server = try TCPListener(reactor: reactor, address: loopback, backlog: 4096) { [unowned reactor] fd in
            if let connection = try? TCPConnection(reactor: reactor, fd: fd, handler: EchoHandler()) {
                accepted.append(connection)
            }
        }
        let clients = 5000
        var open = 0
        var failed = 0
        var connections: [TCPConnection] = []
        for _ in 0..<clients {
            let probe = ClientProbe()
            probe.onMade = { connection in
                connections.append(connection)
                open += 1
                if open == clients {
                    // All open at once: ping each and wait for every echo.
                    var echoed = 0
                    for client in connections {
                        (client.handler as! ClientProbe).onData = { _, _ in
                            echoed += 1
                            if echoed == clients { reactor.stop() }
                        }
                        client.write("x")
                    }
                }
            }
            probe.onFailed = { _ in failed += 1; reactor.stop() }
            TCPConnection.connect(reactor: reactor, to: address(port: server.port), handler: probe)
        }
        try runUntilStopped(reactor, limit: 60)
        #expect(failed == 0)
        #expect(open == clients)
        #expect(accepted.count == clients)
        #expect(reactor.stats.registeredDescriptors >= 2 * clients)
        for connection in connections { connection.abort() }
        for connection in accepted { connection.abort() }
    }

}
