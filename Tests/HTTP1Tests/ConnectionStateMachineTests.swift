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
        #expect(driver.machine.inputDeadlineKind == .idle)
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

    /// Requests that arrived but are not taken yet (the owner serves a turn's share of a pipelining client, then
    /// the other connections): past the pipelining limit reading pauses between requests too, so the bytes held
    /// stay bounded however fast the client sends.
    @Test func requestsNotYetTakenPauseReadingPastTheLimit() {
        var machine = HTTPConnectionStateMachine(config: Self.config())
        machine.connectionMade(now: 0)
        let chunk = Array(String(repeating: Self.get, count: 100).utf8)
        var fed = 0
        while machine.wantsToRead && fed < 16 * 1024 * 1024 {
            machine.bytesReceived(chunk, now: 0)
            fed += chunk.count
        }
        let limit = max(machine.config.maxPipelinedBytes, machine.config.limits.maxHeaderBytes)
        #expect(!machine.wantsToRead)
        #expect(fed > limit && fed <= limit + chunk.count, "held \(fed) bytes")
        // Taking the requests resumes reading.
        while let action = machine.nextAction(now: 0) {
            guard case .dispatch = action else { break }
            _ = machine.takeRequest()
            machine.responseComplete(keepAlive: true, outputBuffered: 0, now: 0)
        }
        #expect(machine.wantsToRead)
    }

    /// Clients that stop reading after a keep-alive answer and after `Connection: close`: each is reset at the send
    /// timeout, whatever state it is in (the refusal's lingering close: `aRefusedClientThatNeverReadsIs…` below).
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
        // The answer is stuck in the process: the send deadline, not the linger, decides, and it resets.
        driver.advance(seconds: 2.5)
        #expect(driver.transport.ending == .writeShutDown)
        driver.advance(seconds: 3)
        #expect(driver.transport.ending == .reset)
    }

    /// A large answer to `Connection: close` with a stray byte after the request lingers; a client that reads it
    /// slowly (longer than the linger) still gets all of it: the linger counts from when the answer left.
    @Test func aLingerWaitsForTheAnswerToLeaveBeforeItsTimeRuns() {
        var config = Self.config(sendTimeout: 5)
        config.lingerTimeout = 2_000_000_000
        var driver = ConnectionDriver(config: config, room: 1000)
        driver.bodySize = { _ in 100_000 }
        driver.receive("GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nX")
        #expect(driver.state == .lingering)
        for _ in 0..<10 {
            driver.advance(seconds: 1)
            driver.peerReads(10_000)
        }
        #expect(driver.transport.ending == .writeShutDown)
        driver.peerReads()
        #expect(driver.transport.queued.isEmpty)
        driver.advance(seconds: 2.1)
        #expect(driver.log.suffix(2) == ["measureUnsent", "close"])
        #expect(driver.transport.ending == .closedAfterFlush)
        #expect(driver.transport.delivered.count > 100_000)
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

    /// Random clients (requests whole and in pieces, malformed ones, 100-continue, empty lines, half-closes, slow
    /// and absent readers, time passing in large and small steps): every state change the machine makes is one its
    /// table allows (an illegal one traps: tests are debug builds), nothing happens after a reset, and a connection
    /// whose client is gone never keeps a deadline it cannot act on.
    @Test func randomClientsOnlyEverTakeTheMachineThroughAllowedChanges() {
        let pieces = [
            Self.get, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n", "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n", "abc", "de",
            "POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n", "3\r\nabc\r\n0\r\n\r\n",
            "\r\n", "GET /h", "ello HTTP/1.1\r\nHost: x\r\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", "BREW / HTCPCP/1.0\r\n\r\n",
        ]
        for seed in 1...300 {
            var random = seed &* 2_654_435_761
            func next(_ bound: Int) -> Int {
                random = random &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return Int(truncatingIfNeeded: (random >> 33) & 0x7fff_ffff) % bound
            }
            var config = Self.config(sendTimeout: Double(1 + next(20)))
            config.idleTimeout = UInt64(1 + next(60)) * 1_000_000_000
            var driver = ConnectionDriver(config: config, room: next(3) == 0 ? 0 : 4096 * next(8))
            driver.bodySize = { $0 == "/big" ? 200_000 : 10 }
            var closedInput = false
            for _ in 0..<60 {
                switch next(8) {
                case 0, 1, 2: driver.receive(pieces[next(pieces.count)])
                case 3: driver.peerReads(next(50_000))
                case 4: driver.advance(seconds: Double(next(40_000)) / 1000)
                case 5: driver.transport.kernelUnsent = next(2) == 0 ? 0 : next(100_000)
                case 6:
                    if driver.waiting != nil { driver.answer(keepAlive: next(2) == 0, bodySize: next(100_000)) } else { driver.hold.toggle() }
                default:
                    if !closedInput {
                        closedInput = true
                        driver.peerCloses()
                    }
                }
                if driver.transport.ending == .reset {
                    #expect(driver.state == .closed, "seed \(seed)")
                    #expect(driver.machine.deadline == 0, "seed \(seed)")
                    #expect(driver.log.last == "reset", "seed \(seed): \(driver.log.suffix(3))")
                    break
                }
            }
        }
        // The table itself refuses what no path needs.
        #expect(!HTTPConnectionStateMachine.allows(from: .idle, to: .streaming))
        #expect(!HTTPConnectionStateMachine.allows(from: .closing, to: .idle))
        #expect(!HTTPConnectionStateMachine.allows(from: .lingering, to: .readingHead))
    }
}
