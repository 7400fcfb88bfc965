#if canImport(Glibc)
import Glibc
#endif
import HTTP1
import HTTPServer
import Reactor
import TestSupport
import Testing

/// The server's deadlines end to end (socket, reactor, timer, connection glue), with the time given by a manual
/// clock: the reactor runs on the test thread one turn at a time, and nothing sleeps.
@Suite("HTTP server deadlines on a manual clock")
struct ManualClockServerTests {
    /// A reactor with a manual clock on the test thread, an HTTP server on it, and blocking client sockets. Loopback
    /// delivers a send before it returns, so one turn of the loop always sees it.
    final class Rig {
        let clock = ManualClock()
        let reactor: Reactor
        let server: HTTPServer
        /// `/stream` starts a stream and leaves its writer here for the test to write to.
        final class Streams {
            var all: [HTTPResponseWriter] = []
            var writer: HTTPResponseWriter? { all.last }
        }
        let streams = Streams()

        init(_ configure: (inout HTTPServerConfig) -> Void = { _ in }) throws {
            var config = HTTPServerConfig()
            configure(&config)
            reactor = try Reactor(backend: .epoll, clock: clock)
            let streams = self.streams
            server = try HTTPServer(reactor: reactor, address: SocketAddress(host: "127.0.0.1", port: 0), config: config) { request, writer in
                if request.path == "/stream" {
                    writer.startStream()
                    streams.all.append(writer)
                } else {
                    writer.respond(status: .ok, text: "hi\n")
                }
            }
        }

        func connect(receiveBuffer: Int32? = nil) throws -> Int32 {
            let address = try SocketAddress(host: "127.0.0.1", port: server.port)
            let fd = try Socket.makeStream(for: address, nonBlocking: false)
            if var size = receiveBuffer {
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            }
            guard address.withSockAddr({ Glibc.connect(fd, $0, $1) }) == 0 else { throw SystemError.last("connect") }
            turn()
            return fd
        }

        /// A few turns of the loop: accepts, reads, timers due by the clock, deferred closes.
        func turn() {
            for _ in 0..<4 { try? reactor.runOnce() }
        }

        func advance(seconds: Double) {
            clock.advance(seconds: seconds)
            turn()
        }

        func send(_ fd: Int32, _ text: String) {
            var bytes = Array(text.utf8)
            _ = bytes.withUnsafeMutableBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            turn()
        }

        /// What has arrived for the client, without waiting, and whether the server has closed.
        func received(_ fd: Int32) -> (text: String, closed: Bool) {
            var data: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if count > 0 { data += buffer[0..<count]; continue }
                return (String(decoding: data, as: UTF8.self), count == 0 || (count < 0 && errno != EAGAIN))
            }
        }
    }

    @Test func aSilentConnectionClosesAtTheHeaderTimeoutByTheReactorsClock() throws {
        let rig = try Rig { $0.headerTimeout = 10; $0.idleTimeout = 60 }
        let fd = try rig.connect()
        defer { close(fd) }
        #expect(rig.server.openConnections == 1)
        rig.advance(seconds: 9.9)
        #expect(!rig.received(fd).closed)
        rig.advance(seconds: 0.2)
        let end = rig.received(fd)
        #expect(end.closed && end.text.isEmpty)
        #expect(rig.server.openConnections == 0)
    }

    @Test func aTricklingHeadGets408AtItsDeadline() throws {
        let rig = try Rig { $0.headerTimeout = 10 }
        let fd = try rig.connect()
        defer { close(fd) }
        rig.advance(seconds: 5)
        rig.send(fd, "GET / HTTP/1.1\r\n")
        rig.advance(seconds: 9.9)
        #expect(rig.received(fd).text.isEmpty)
        rig.advance(seconds: 0.2)
        #expect(rig.received(fd).text.hasPrefix("HTTP/1.1 408 "))
        #expect(rig.server.stats.timeouts == 1)
        // The client keeps trickling and never closes: the linger after the 408 ends the connection, and since the
        // 408 was delivered, that is not a send timeout.
        rig.send(fd, "Host: x\r\n")
        rig.advance(seconds: 3)
        rig.advance(seconds: 3)
        #expect(rig.server.openConnections == 0)
        #expect(rig.server.stats.sendTimeouts == 0)
    }

    /// A client pipelining hundreds of requests is served a slice per turn of the loop: another client whose
    /// request arrived in the same turn is answered in that turn, not after the whole flood, and the flood is
    /// still answered whole and in order.
    @Test func aPipeliningFloodIsServedInSlicesAndOthersAreAnsweredMeanwhile() throws {
        let rig = try Rig()
        let flood = try rig.connect()
        defer { close(flood) }
        let other = try rig.connect()
        defer { close(other) }
        let requests = 400
        var batch = Array(String(repeating: "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", count: requests).utf8)
        #expect(batch.withUnsafeMutableBytes { Glibc.send(flood, $0.baseAddress, $0.count, 0) } == batch.count)
        var single = Array("GET /y HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        _ = single.withUnsafeMutableBytes { Glibc.send(other, $0.baseAddress, $0.count, 0) }
        // One turn: both connections are ready in it.
        try rig.reactor.runOnce()
        let answeredToFlood = rig.received(flood).text.components(separatedBy: "HTTP/1.1 200 ").count - 1
        #expect(rig.received(other).text.hasPrefix("HTTP/1.1 200 "), "the other client waited for the flood")
        #expect(answeredToFlood > 0 && answeredToFlood < requests, "answered to the flood in the first turn: \(answeredToFlood)")
        var total = answeredToFlood
        for _ in 0..<100 where total < requests {
            try rig.reactor.runOnce()
            total += rig.received(flood).text.components(separatedBy: "HTTP/1.1 200 ").count - 1
        }
        #expect(total == requests)
        #expect(rig.server.stats.requests == requests + 1)
    }

    /// Requests pipelined and then the client's FIN (`shutdown(SHUT_WR)`): every request that arrived before the
    /// FIN is answered, in order, and only then does the server close. Requests the server had not yet taken when
    /// the FIN came (it takes a share per turn) were dropped before.
    @Test func everyRequestPipelinedBeforeTheClientsFINIsAnswered() throws {
        let rig = try Rig()
        let fd = try rig.connect()
        defer { close(fd) }
        let requests = 300
        var batch = Array(String(repeating: "GET /x HTTP/1.1\r\nHost: x\r\n\r\n", count: requests).utf8)
        #expect(batch.withUnsafeMutableBytes { Glibc.send(fd, $0.baseAddress, $0.count, 0) } == batch.count)
        Glibc.shutdown(fd, Int32(SHUT_WR))
        var text = ""
        var closed = false
        for _ in 0..<200 where !closed {
            try rig.reactor.runOnce()
            let got = rig.received(fd)
            text += got.text
            closed = got.closed
        }
        #expect(closed, "the server never closed")
        #expect(text.components(separatedBy: "HTTP/1.1 200 ").count - 1 == requests)
    }

    @Test func aKeepAliveConnectionLivesItsIdleTimeoutBetweenRequests() throws {
        let rig = try Rig { $0.headerTimeout = 10; $0.idleTimeout = 60 }
        let fd = try rig.connect()
        defer { close(fd) }
        rig.send(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(rig.received(fd).text.hasPrefix("HTTP/1.1 200 "))
        rig.advance(seconds: 59)
        #expect(!rig.received(fd).closed)
        rig.advance(seconds: 2)
        #expect(rig.received(fd).closed)
    }

    /// A stream whose client stops reading is reset at the send timeout, even when the stream's writes come from
    /// outside the connection's own turns (a fetch's events) and no other deadline is running by then.
    @Test func aStreamWhoseClientStopsReadingIsResetAtTheSendTimeout() throws {
        let rig = try Rig { $0.headerTimeout = 10; $0.sendTimeout = 10 }
        let fd = try rig.connect(receiveBuffer: 4096)
        defer { close(fd) }
        rig.send(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        let writer = try #require(rig.streams.writer)
        // Past the timer the connection armed at its start: from here only the stream's writes can arm one.
        rig.advance(seconds: 11)
        #expect(rig.server.openConnections == 1)
        let chunk = [UInt8](repeating: 0x61, count: 16 * 1024)
        var written = 0
        while writer.isWritable && written < 100_000_000 {
            writer.write(chunk)
            written += chunk.count
        }
        #expect(!writer.isWritable, "the client's buffers never filled")
        rig.advance(seconds: 9.9)
        #expect(rig.server.openConnections == 1)
        rig.advance(seconds: 0.2)
        #expect(rig.server.openConnections == 0)
        #expect(rig.server.stats.sendTimeouts == 1)
    }

    /// Connections that go idle when their stream ends make room too: at the cap, a newcomer waits in the backlog
    /// until a stream ends, then the oldest idle connections are closed and it is served.
    @Test func connectionsIdleAfterAStreamMakeRoomAtTheCap() throws {
        let rig = try Rig { $0.maxConnections = 10; $0.idleTimeout = 60 }
        var clients: [Int32] = []
        defer { clients.forEach { close($0) } }
        for _ in 0..<10 {
            let fd = try rig.connect()
            clients.append(fd)
            rig.send(fd, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        }
        #expect(rig.streams.all.count == 10)
        let newcomer = try rig.connect()
        clients.append(newcomer)
        rig.send(newcomer, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        #expect(rig.received(newcomer).text.isEmpty, "served past the cap")
        for writer in rig.streams.all { writer.finish() }
        rig.turn()
        rig.turn()
        #expect(rig.server.stats.idleConnectionsEvicted > 0)
        #expect(rig.received(newcomer).text.hasPrefix("HTTP/1.1 200 "))
    }
}
