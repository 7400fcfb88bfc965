@testable import HTTP1
import TestSupport
import Testing

/// The connection's behaviour toward hostile and ordinary clients, on the state machine alone: a fake transport and
/// a manual clock, so nothing here sleeps or opens a socket.
@Suite("The HTTP connection state machine")
struct ConnectionStateMachineTests {
    static let get = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"

    static func config(sendTimeout: Double = 60) -> HTTPConnectionConfig {
        var config = HTTPConnectionConfig()
        config.headerTimeout = 10_000_000_000
        config.idleTimeout = 60_000_000_000
        config.bodyTimeout = 30_000_000_000
        config.sendTimeout = UInt64(sendTimeout * 1_000_000_000)
        return config
    }

    @Test func aKeepAliveRequestIsAnsweredAndTheConnectionWaitsIdle() {
        var driver = ConnectionDriver(config: Self.config())
        driver.receive(Self.get)
        #expect(driver.dispatched == ["/hello"])
        #expect(driver.state == .idle)
        #expect(driver.transport.deliveredText.hasPrefix("HTTP/1.1 200 OK"))
        #expect(driver.machine.deadlineKind == .idle)
        #expect(!driver.transport.readingPaused)
    }

    /// The pipelining flood: 2,000 small requests whose 10 KB answers the client never reads. Only as many are
    /// taken as fit under the high watermark, reading stops, and once the send timeout passes the connection is
    /// reset. Before, every request was answered into an ever-growing buffer (1.6 GB in ten seconds).
    @Test func aClientThatPipelinesAndNeverReadsIsBoundedThenReset() {
        var driver = ConnectionDriver(config: Self.config(sendTimeout: 60), room: 0)
        driver.bodySize = { _ in 10 * 1024 }
        let flood = String(repeating: Self.get, count: 2_000)
        driver.receive(flood)
        let config = driver.machine.config
        let answered = driver.dispatched.count
        #expect(answered >= 1 && answered <= config.highWatermark / (10 * 1024) + 1, "answered \(answered)")
        #expect(driver.transport.queued.count <= config.highWatermark + 10 * 1024 + 100)
        #expect(driver.transport.readingPaused)
        #expect(driver.state == .writing)
        // More bytes are not read while paused (the kernel holds them).
        let readMore = driver.receive(Self.get)
        #expect(!readMore)
        driver.advance(seconds: 59)
        #expect(driver.transport.ending == .open)
        driver.advance(seconds: 2)
        #expect(driver.transport.ending == .reset)
        #expect(driver.dispatched.count == answered)
    }

    /// The same client, once it reads, gets every answer in order: backpressure delays, it never drops.
    @Test func backpressureResumesAtTheLowWatermarkAndLosesNothing() {
        var driver = ConnectionDriver(config: Self.config(), room: 0)
        driver.bodySize = { _ in 10 * 1024 }
        driver.receive(String(repeating: Self.get, count: 40))
        let first = driver.dispatched.count
        #expect(first < 40)
        var rounds = 0
        while driver.dispatched.count < 40 && rounds < 1_000 {
            driver.peerReads(8 * 1024)
            rounds += 1
        }
        driver.peerReads()
        #expect(driver.dispatched.count == 40)
        #expect(driver.transport.deliveredText.matches(of: #/HTTP\/1\.1 200 OK/#).count == 40)
        #expect(driver.state == .idle)
        #expect(!driver.transport.readingPaused)
    }

    /// A request in flight, and the client keeps pipelining: past the pipelining limit reading pauses.
    @Test func pipelinedBytesBeyondTheLimitPauseReadingWhileARequestIsAnswered() {
        var driver = ConnectionDriver(config: Self.config())
        driver.hold = true
        driver.receive(Self.get)
        #expect(driver.state == .waitingForHandler)
        let limit = driver.machine.config.maxPipelinedBytes
        var sent = 0
        while driver.receive(Self.get) { sent += Self.get.utf8.count }
        #expect(sent > limit && sent <= limit + Self.get.utf8.count)
        driver.answer()
        #expect(driver.dispatched.count == 2)
        #expect(!driver.transport.readingPaused)
    }

    /// Clients that stop reading after a keep-alive answer, after a refusal (the lingering close) and after
    /// `Connection: close`: each is reset at the send timeout, whatever state it is in.
    @Test(arguments: [
        ("GET /big HTTP/1.1\r\nHost: x\r\n\r\n", HTTPConnectionStateMachine.State.writing),
        ("GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", .closing),
    ])
    func aClientThatStopsReadingIsResetAtTheSendTimeout(request: String, stuckIn: HTTPConnectionStateMachine.State) {
        var driver = ConnectionDriver(config: Self.config(sendTimeout: 5), room: 1000)
        driver.bodySize = { _ in 200 * 1024 }
        driver.receive(request)
        #expect(driver.state == stuckIn)
        driver.advance(seconds: 4)
        driver.peerReads(100)  // progress restarts the count
        driver.advance(seconds: 4)
        #expect(driver.transport.ending != .reset)
        driver.advance(seconds: 1.5)
        #expect(driver.transport.ending == .reset)
        #expect(driver.state == .closed)
    }

    /// Answers the kernel took but the client never read leave the connection idle, with nothing queued in the
    /// process: the kernel's unsent count is checked, and a count that does not move resets it.
    @Test func anIdleClientWhoseAnswersSitUnreadInTheKernelIsReset() {
        var driver = ConnectionDriver(config: Self.config(sendTimeout: 4))
        driver.receive(Self.get)
        #expect(driver.state == .idle)
        driver.transport.kernelUnsent = 2_000_000
        driver.advance(seconds: 2)
        driver.advance(seconds: 2)
        #expect(driver.transport.ending == .open)
        driver.transport.kernelUnsent = 1_000_000  // the client read some: progress
        driver.advance(seconds: 2)
        driver.advance(seconds: 2)
        #expect(driver.transport.ending == .open)
        driver.advance(seconds: 2)
        #expect(driver.transport.ending == .reset)
        #expect(driver.log.filter { $0 == "measureUnsent" }.count == 5)
    }

    @Test func anIdleClientThatReadEverythingIsLeftToTheIdleTimeout() {
        var driver = ConnectionDriver(config: Self.config(sendTimeout: 4))
        driver.receive(Self.get)
        driver.advance(seconds: 30)
        #expect(driver.transport.ending == .open)
        driver.advance(seconds: 31)
        #expect(driver.transport.ending == .closedAfterFlush)
    }

    @Test func aRefusedClientThatNeverReadsIsResetNotLingeredForever() {
        var config = Self.config(sendTimeout: 5)
        config.lingerTimeout = 2_000_000_000
        var driver = ConnectionDriver(config: config, room: 0)
        driver.receive("GET /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        #expect(driver.refused == [400])
        #expect(driver.state == .lingering)
        #expect(driver.transport.ending == .writeShutDown)
        // The linger deadline comes first; with the answer still stuck the close is a reset, not a wait.
        driver.advance(seconds: 2.5)
        #expect(driver.transport.ending == .reset)
    }

    @Test func aRefusedClientThatReadsClosesAfterItsFin() {
        var driver = ConnectionDriver(config: Self.config())
        driver.receive("GET /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n")
        #expect(driver.refused == [400])
        #expect(driver.state == .lingering)
        driver.receive("more junk")  // discarded
        #expect(driver.dispatched.isEmpty)
        driver.peerCloses()
        #expect(driver.state == .closing)
        #expect(driver.transport.ending == .closedAfterFlush)
    }

    /// A connection that sends nothing closes at the header timeout, not the idle timeout (six times longer).
    @Test func aSilentConnectionClosesAtTheHeaderTimeout() {
        var driver = ConnectionDriver(config: Self.config())
        #expect(driver.machine.deadlineKind == .idle)
        driver.advance(seconds: 9.9)
        #expect(driver.transport.ending == .open)
        driver.advance(seconds: 0.2)
        #expect(driver.transport.ending == .closedAfterFlush)
        #expect(driver.transport.delivered.isEmpty)
    }

    @Test func aTricklingHeadGets408AtTheHeaderDeadlineFromItsFirstByte() {
        var driver = ConnectionDriver(config: Self.config())
        driver.advance(seconds: 5)
        for byte in "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ".utf8 {
            driver.receive([byte])
            driver.advance(seconds: 0.1)
            if !driver.refused.isEmpty { break }
        }
        #expect(driver.refused.isEmpty)
        driver.advance(seconds: 10)
        #expect(driver.refused == [408])
        #expect(driver.transport.deliveredText.hasPrefix("HTTP/1.1 408"))
    }

    @Test func aStalledBodyGets408AtTheBodyDeadline() {
        var driver = ConnectionDriver(config: Self.config())
        driver.receive("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        #expect(driver.state == .readingBody)
        #expect(driver.machine.deadlineKind == .body)
        driver.advance(seconds: 29)
        #expect(driver.refused.isEmpty)
        driver.advance(seconds: 2)
        #expect(driver.refused == [408])
    }

    /// Between keep-alive requests the idle timeout runs; stray empty lines do not extend it.
    @Test func emptyLinesDoNotKeepAnIdleConnectionAlive() {
        var driver = ConnectionDriver(config: Self.config())
        driver.receive(Self.get)
        for _ in 0..<7 {
            driver.advance(seconds: 8)
            driver.receive("\r\n")
        }
        #expect(driver.transport.ending == .open)  // 56 s
        driver.advance(seconds: 5)
        #expect(driver.transport.ending == .closedAfterFlush)
    }

    @Test func expectContinueIsAnsweredBeforeTheBody() {
        var driver = ConnectionDriver(config: Self.config())
        driver.receive("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
        #expect(driver.log == ["continue"])
        driver.receive("abc")
        #expect(driver.log == ["continue", "dispatch /echo"])
    }

    @Test func aHalfClosedClientStillGetsItsPipelinedAnswersThenTheClose() {
        var driver = ConnectionDriver(config: Self.config())
        driver.hold = true
        driver.receive(Self.get + Self.get)
        driver.peerCloses()
        #expect(driver.transport.ending == .open)
        driver.answer()
        driver.answer()
        #expect(driver.dispatched.count == 2)
        #expect(driver.transport.ending == .closedAfterFlush)
    }

    /// Any split of the same bytes gives the same actions (the fuzz target checks this for arbitrary bytes).
    @Test func everySplitOfAStreamGivesTheSameActions() {
        let stream = Self.get + "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            + "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        var whole = ConnectionDriver(config: Self.config())
        whole.receive(stream)
        let bytes = Array(stream.utf8)
        for size in [1, 2, 3, 7, 64] {
            var split = ConnectionDriver(config: Self.config())
            var index = 0
            while index < bytes.count {
                split.receive(Array(bytes[index..<min(index + size, bytes.count)]))
                index += size
            }
            #expect(split.log == whole.log, "split in \(size)-byte pieces")
        }
        #expect(whole.log == ["dispatch /hello", "dispatch /echo", "dispatch /a", "close"])
    }

    @Test func everyStateChangeTheMachineMakesIsOneItAllows() {
        typealias State = HTTPConnectionStateMachine.State
        #expect(HTTPConnectionStateMachine.allows(from: .idle, to: .readingHead))
        #expect(!HTTPConnectionStateMachine.allows(from: .idle, to: .streaming))
        #expect(!HTTPConnectionStateMachine.allows(from: .closing, to: .idle))
        #expect(!HTTPConnectionStateMachine.allows(from: .lingering, to: .readingHead))
        for state in [State.idle, .readingHead, .readingBody, .waitingForHandler, .streaming, .writing, .lingering, .closing] {
            #expect(HTTPConnectionStateMachine.allows(from: state, to: .closed))
        }
    }
}
