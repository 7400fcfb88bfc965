#if canImport(Glibc)
import Glibc
#endif
@testable import Reactor
import Testing

@Suite("TCP transports, on every backend")
struct TCPTests {
    @Test(arguments: BackendKind.allCases)
    func echoOverLoopback(backend: BackendKind) throws {
        let reactor = try Reactor(backend: backend)
        let server = try listen(reactor) { EchoHandler() }
        let message = Array("hello, reactor".utf8)
        var received: [UInt8] = []
        let probe = ClientProbe()
        probe.onMade = { $0.write(message) }
        probe.onData = { connection, bytes in
            received += bytes
            if received.count == message.count { connection.close() }
        }
        var lost: ConnectionLossReason?
        probe.onLost = { lost = $0; reactor.stop() }
        TCPConnection.connect(reactor: reactor, to: address(port: server.port), handler: probe)
        try runUntilStopped(reactor)
        #expect(received == message)
        #expect(lost == .done)
    }

    /// Closing a transport forgets its descriptor without a separate deregistration (epoll drops closed
    /// descriptors itself): the number, reused at once by the next connections, must register and work as new.
    @Test(arguments: BackendKind.allCases)
    func aClosedTransportsDescriptorNumberServesTheNextConnection(backend: BackendKind) throws {
        let reactor = try Reactor(backend: backend)
        let server = try listen(reactor) { EchoHandler() }
        var descriptors: [Int32] = []
        var echoed = 0
        func next(_ remaining: Int) {
            guard remaining > 0 else {
                reactor.stop()
                return
            }
            let probe = ClientProbe()
            probe.onMade = { connection in
                descriptors.append(connection.fd)
                connection.write(Array("ping".utf8))
            }
            probe.onData = { connection, _ in
                echoed += 1
                connection.close()
            }
            probe.onLost = { _ in next(remaining - 1) }
            probe.onFailed = { _ in reactor.stop() }
            TCPConnection.connect(reactor: reactor, to: address(port: server.port), handler: probe)
        }
        next(5)
        try runUntilStopped(reactor)
        #expect(echoed == 5)
        #expect(Set(descriptors).count < descriptors.count, "descriptor numbers were not reused: \(descriptors)")
    }

    @Test func noDelayIsSetOnceAndSticks() throws {
        let reactor = try Reactor()
        let server = try listen(reactor) { EchoHandler() }
        var before: Int32 = -1, after: Int32 = -1
        let probe = ClientProbe()
        probe.onMade = { connection in
            func option() -> Int32 {
                var value: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                getsockopt(connection.fd, Int32(IPPROTO_TCP), TCP_NODELAY, &value, &length)
                return value
            }
            before = option()
            connection.setNoDelay()
            connection.setNoDelay()
            after = option()
            connection.close()
        }
        probe.onLost = { _ in reactor.stop() }
        TCPConnection.connect(reactor: reactor, to: address(port: server.port), noDelay: false, handler: probe)
        try runUntilStopped(reactor)
        #expect(before == 0)
        #expect(after != 0)
    }

    @Test(arguments: BackendKind.allCases)
    func connectionRefusedIsReported(backend: BackendKind) throws {
        let reactor = try Reactor(backend: backend)
        var failure: ConnectError?
        let probe = ClientProbe()
        probe.onFailed = { failure = $0; reactor.stop() }
        probe.onMade = { _ in reactor.stop() }
        TCPConnection.connect(reactor: reactor, to: address(port: closedPort()), handler: probe)
        try runUntilStopped(reactor)
        #expect(failure == .refused)
        #expect(failure?.description == "Connection refused")
    }

    @Test(arguments: BackendKind.allCases)
    func peerResetMidWriteEndsTheWriterWithAReason(backend: BackendKind) throws {
        let reactor = try Reactor(backend: backend)
        var serverLoss: ConnectionLossReason?
        let chunk = [UInt8](repeating: 42, count: 64 * 1024)
        let server = try listen(reactor) {
            let writer = ClientProbe()
            // Keep the socket full so the reset arrives while writes are pending.
            writer.onMade = { connection in
                func pump() {
                    // A write can end the connection (the reset seen by its send): check on every turn.
                    while connection.isOpen && connection.bufferedBytes < 1 << 20 { connection.write(chunk) }
                    guard connection.isOpen else { return }
                    reactor.callLater(0.001, pump)
                }
                pump()
            }
            writer.onLost = { serverLoss = $0; reactor.stop() }
            return writer
        }
        let reader = ClientProbe()
        var got = 0
        reader.onData = { connection, bytes in
            got += bytes.count
            if got > 100_000 { connection.abort() }
        }
        TCPConnection.connect(reactor: reactor, to: address(port: server.port), handler: reader)
        try runUntilStopped(reactor)
        #expect(serverLoss == .reset)
    }

    @Test(arguments: BackendKind.allCases)
    func slowReaderDrivesTheWatermarksAndTheBufferStaysBounded(backend: BackendKind) throws {
        let reactor = try Reactor(backend: backend)
        let total = 8 << 20
        let chunk = [UInt8](repeating: 7, count: 16 * 1024)
        var sent = 0
        var maxBuffered = 0
        var pauses = 0
        var resumes = 0
        let server = try listen(reactor) {
            let producer = ClientProbe()
            func produce(_ connection: TCPConnection) {
                // `isWritable` is current; the notice of a change comes later, never inside a write.
                while connection.isWritable && sent < total {
                    connection.write(chunk)
                    sent += chunk.count
                    maxBuffered = max(maxBuffered, connection.bufferedBytes)
                }
                if sent >= total { connection.close() }
            }
            producer.onMade = { produce($0) }
            producer.onWritability = { writable in
                if writable { resumes += 1; produce(producer.connection!) } else { pauses += 1 }
            }
            return producer
        }
        var received = 0
        let reader = ClientProbe()
        reader.onData = { connection, bytes in
            received += bytes.count
            // Read a little, then stop reading for a moment: a slow consumer.
            connection.pauseReading()
            reactor.callLater(0.0005) { connection.resumeReading() }
        }
        reader.onLost = { _ in reactor.stop() }
        TCPConnection.connect(reactor: reactor, to: address(port: server.port), handler: reader)
        try runUntilStopped(reactor, limit: 60)
        #expect(received == total)
        #expect(pauses > 0)
        #expect(resumes > 0)
        // Never more than the high watermark plus the one write that crossed it.
        #expect(maxBuffered <= 64 * 1024 + chunk.count)
    }

    @Test(arguments: BackendKind.allCases)
    func halfCloseStillReads(backend: BackendKind) throws {
        let reactor = try Reactor(backend: backend)
        final class CollectThenAnswer: ConnectionHandler {
            var connection: TCPConnection?
            var received = 0
            func connectionMade(_ connection: TCPConnection) { self.connection = connection }
            func dataReceived(_ bytes: UnsafeRawBufferPointer) { received += bytes.count }
            func readEOF() -> Bool {
                connection?.write("got \(received)")
                connection?.close()
                return true
            }
            func connectionLost(_ reason: ConnectionLossReason) {}
        }
        let server = try listen(reactor) { CollectThenAnswer() }
        var answer = ""
        let probe = ClientProbe()
        probe.onMade = { connection in
            connection.write([UInt8](repeating: 1, count: 1000))
            connection.shutdownWrite()
        }
        probe.onData = { _, bytes in answer += String(decoding: bytes, as: UTF8.self) }
        probe.onLost = { _ in reactor.stop() }
        TCPConnection.connect(reactor: reactor, to: address(port: server.port), handler: probe)
        try runUntilStopped(reactor)
        #expect(answer == "got 1000")
    }

    @Test func connectTimesOutOnAnUnansweredSyn() throws {
        // A listener with a full backlog that never accepts leaves further SYNs unanswered.
        let reactor = try Reactor()
        let fd = try Socket.listen(on: loopback, backlog: 0, nonBlocking: true)
        defer { close(fd) }
        let port = SocketAddress.local(of: fd)!.port
        var outcomes: [String] = []
        var pending = 8
        for _ in 0..<8 {
            let probe = ClientProbe()
            probe.onMade = { _ in outcomes.append("connected"); pending -= 1; if pending == 0 { reactor.stop() } }
            probe.onFailed = { outcomes.append("\($0)"); pending -= 1; if pending == 0 { reactor.stop() } }
            TCPConnection.connect(reactor: reactor, to: address(port: port), timeout: 0.2, handler: probe)
        }
        try runUntilStopped(reactor)
        #expect(outcomes.contains("Connection timed out"))
    }
}

/// Transport lifecycles that cannot race: what a connector owns after it reports, and frames that stay whole
/// when a handler writes on being told it is not writable.
@Suite("TCP lifecycles")
struct TCPLifecycleTests {
    /// A connect that succeeded at once and is then cancelled closes its socket once: the queued report must not
    /// close the number again, which by then belongs to somebody else (here a descriptor put on that number).
    @Test func aConnectThatSucceededAtOnceThenIsCancelledClosesItsSocketOnce() throws {
        let reactor = try Reactor()
        let listenFD = try Socket.listen(on: loopback, nonBlocking: false)
        defer { close(listenFD) }
        let port = SocketAddress.local(of: listenFD)!.port
        // Parallel suites open descriptors too: retry until the stranger lands on the freed number.
        var proven = false
        for _ in 0..<20 where !proven {
            var connectedFD: Int32 = -1
            var reported = false
            let connector = TCPConnector(reactor: reactor, address: address(port: port), timeout: nil, connectCall: { fd, address in
                // A blocking connect to loopback completes before it returns, as a non-blocking one may.
                let flags = fcntl(fd, F_GETFL)
                _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
                let result = address.withSockAddr { connect(fd, $0, $1) }
                _ = fcntl(fd, F_SETFL, flags)
                connectedFD = fd
                return result
            }) { _, _ in reported = true }
            #expect(connectedFD >= 0)
            connector.cancel()
            #expect(connector.isFinished)
            let stranger = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, connectedFD)
            defer { close(stranger) }
            guard stranger == connectedFD else { continue }
            proven = true
            reactor.callSoon { reactor.stop() }  // after the connector's queued report
            try runUntilStopped(reactor)
            #expect(fcntl(stranger, F_GETFD) != -1, "the connector closed a descriptor it no longer owned")
            #expect(!reported, "a cancelled connector reported")
        }
        #expect(proven)
    }

    /// A handler that writes as soon as it hears it is not writable must not slip its bytes into the middle of a
    /// frame its caller is still writing: the notice comes after the write that crossed the watermark returns.
    @Test(arguments: BackendKind.allCases)
    func aHandlerThatWritesOnNotWritableCannotSplitAFrame(backend: BackendKind) throws {
        let reactor = try Reactor(backend: backend)
        let payload = [UInt8](repeating: UInt8(ascii: "."), count: 1 << 20)
        final class FrameWriter: ConnectionHandler {
            let payload: [UInt8]
            var connection: TCPConnection?
            var notices: [Bool] = []
            init(payload: [UInt8]) { self.payload = payload }
            func connectionMade(_ connection: TCPConnection) {
                self.connection = connection
                // One frame in three writes, as a chunk's size line, data and CRLF; the data overflows the buffer.
                connection.write("[")
                connection.write(payload)
                connection.write("]")
            }
            func dataReceived(_ bytes: UnsafeRawBufferPointer) {}
            func writabilityChanged(_ writable: Bool) {
                notices.append(writable)
                if !writable {
                    connection?.write("<marker>")
                    connection?.close()
                }
            }
            func connectionLost(_ reason: ConnectionLossReason) { connection = nil }
        }
        var writer: FrameWriter?
        let listener = try TCPListener(reactor: reactor, address: loopback) { [unowned reactor] fd in
            var small: Int32 = 4096
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<Int32>.size))
            let handler = FrameWriter(payload: payload)
            writer = handler
            _ = try? TCPConnection(reactor: reactor, fd: fd, handler: handler)
        }
        var received: [UInt8] = []
        let reader = ClientProbe()
        reader.onData = { _, bytes in received.append(contentsOf: bytes) }
        reader.onLost = { _ in reactor.stop() }
        TCPConnection.connect(reactor: reactor, to: address(port: listener.port), handler: reader)
        try runUntilStopped(reactor, limit: 60)
        listener.close()
        #expect(writer?.notices.first == false)
        let expected = Array("[".utf8) + payload + Array("]<marker>".utf8)
        let whole = received == expected
        #expect(whole, "a frame was split; the stream ends \(String(decoding: received.suffix(12), as: UTF8.self))")
    }
}
