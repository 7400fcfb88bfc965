#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Reactor
import TestSupport
import Testing

/// Runs the built `poetry` binary as a person would and returns (status, stdout, stderr).
func runPoetry(_ arguments: [String], until: ((String) -> Bool)? = nil) throws -> (status: Int32, out: String, err: String) {
    let binary = poetryBinary
    try #require(FileManager.default.isExecutableFile(atPath: binary), "build the poetry executable first (swift build)")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: projectRoot)
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// Starts `poetry serve` in the background and returns it with its port, read from its first line; `errors`, if
/// given, receives its standard error.
func startServe(_ arguments: [String], errors: Pipe? = nil) throws -> (Process, UInt16) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: poetryBinary)
    process.arguments = ["serve"] + arguments
    process.currentDirectoryURL = URL(fileURLWithPath: projectRoot)
    let out = Pipe()
    process.standardOutput = out
    if let errors { process.standardError = errors }
    try process.run()
    var line = Data()
    while !line.contains(UInt8(ascii: "\n")) {
        let byte = out.fileHandleForReading.readData(ofLength: 1)
        if byte.isEmpty { break }
        line.append(byte)
    }
    let text = String(decoding: line, as: UTF8.self)
    let port = text.split(separator: " ").last.flatMap { UInt16($0.dropLast(2)) } ?? 0
    return (process, port)
}

@Suite("The poetry command line")
struct CLITests {
    @Test func serveAnnouncesItselfInTheSeedsWords() throws {
        let (server, port) = try startServe(["--async", "--delay", "0.001", "--num-bytes", "100", "poetry/science.txt"])
        defer { server.terminate(); server.waitUntilExit() }
        #expect(port > 0)
        let result = try runPoetry(["get", "--blocking", String(port)])
        #expect(result.status == 0)
        let lines = result.out.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0] == "Task 1: get poetry from: 127.0.0.1:\(port)")
        #expect(lines[1].wholeMatch(of: /Task 1: got 653 bytes of poetry from 127\.0\.0\.1:\d+ in 0:00:\d\d\.\d{6}/) != nil, "\(lines[1])")
        #expect(lines[2].wholeMatch(of: /Got 1 poems in 0:00:\d\d\.\d{6}/) != nil, "\(lines[2])")
    }

    /// On io_uring the client's waits gather reads (`--batch-wait`, on by default): the same lines.
    @Test(arguments: ["poll", "io_uring"])
    func asyncGetPrintsEveryReadThenTotals(reactor: String) throws {
        let (server, port) = try startServe(["--async", "--delay", "0.002", "poetry/fascination.txt"])
        defer { server.terminate(); server.waitUntilExit() }
        // Two addresses, the second given with its host, the pair as a comma-separated list.
        let result = try runPoetry(["get", "--async", "--reactor", reactor, "--print-poems", "\(port),127.0.0.1:\(port)"])
        #expect(result.status == 0)
        let lines = result.out.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.contains("Task 1: got 10 bytes of poetry from 127.0.0.1:\(port)"))
        #expect(lines.contains("Task 2 finished"))
        #expect(lines.contains("Task 1: 615 bytes of poetry"))
        #expect(lines.contains("Task 2: 615 bytes of poetry"))
        #expect(lines.contains { $0.hasPrefix("Got 2 poems in 0:00:") })
        #expect(result.out.contains("The fascination of what's difficult"))
    }

    @Test func blockingServerPrintsEachSend() throws {
        let (server, port) = try startServe(["--delay", "0.001", "--num-bytes", "300", "poetry/science.txt"])
        let result = try runPoetry(["get", "--blocking", String(port)])
        server.terminate()
        server.waitUntilExit()
        #expect(result.status == 0)
        #expect(server.terminationStatus == 0, "SIGTERM is an orderly stop")
        let output = String(decoding: (server.standardOutput as! Pipe).fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let lines = output.split(separator: "\n").map(String.init)
        #expect(lines.first?.wholeMatch(of: /Somebody at \('127\.0\.0\.1', \d+\) wants poetry!/) != nil, "\(lines)")
        #expect(Array(lines.dropFirst()) == ["Sending 300 bytes", "Sending 300 bytes", "Sending 53 bytes"])
    }

    @Test func reactorThreadsShareThePortAndTheirPacingIsMerged() throws {
        let err = Pipe()
        let (process, port) = try startServe(["--async", "--threads", "2", "--report-lateness", "--delay", "0.001", "--num-bytes", "100",
                                              "poetry/science.txt"], errors: err)
        #expect(port > 0)
        // 20 clients: the kernel hashes each onto one of the two listeners, so both threads serve some.
        let result = try runPoetry(["get", "--async", "--quiet", Array(repeating: String(port), count: 20).joined(separator: ",")])
        #expect(result.status == 0)
        #expect(result.out.contains("Got 20 poems"))
        process.terminate()
        let report = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // 653 bytes in sends of 100: 7 paced sends a client, from both threads' histograms together.
        #expect(report.contains("Pacing: sends 140 late by"), "\(report)")

        let blocking = try runPoetry(["serve", "--threads", "2", "poetry/science.txt"])
        #expect(blocking.status != 0)
        #expect(blocking.err.contains("--threads needs --async"))
    }

    @Test func theAsyncServerRunsAReactorPerCoreAndNeverSharesItsPortByAccident() throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let first = Process()
        first.executableURL = URL(fileURLWithPath: poetryBinary)
        first.arguments = ["serve", "--async", "poetry/science.txt"]
        first.currentDirectoryURL = URL(fileURLWithPath: projectRoot)
        let out = Pipe()
        first.standardOutput = out
        try first.run()
        defer { first.terminate(); first.waitUntilExit() }
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        let threads = cores > 1 ? " with \(min(cores, 64)) reactor threads" : ""
        #expect(line.wholeMatch(of: try Regex("Serving poetry/science.txt\(threads) on port \\d+\\.\n")) != nil, "\(line)")
        let port = try #require(line.split(separator: " ").last.flatMap { UInt16($0.dropLast(2)) })
        let (explicit, explicitPort) = try startServe(["--async", "--threads", "2", "poetry/science.txt"])
        defer { explicit.terminate(); explicit.waitUntilExit() }

        // SO_REUSEPORT would let a second server of ours join the port and take half its clients; it must not.
        for taken in [port, explicitPort] {
            let errors = Pipe()
            let (second, secondPort) = try startServe(["--async", "--threads", "2", "--port", String(taken), "poetry/science.txt"], errors: errors)
            if secondPort != 0 { second.terminate() }
            second.waitUntilExit()
            #expect(secondPort == 0, "a second server started on port \(taken)")
            #expect(second.terminationStatus != 0)
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(message == "Cannot listen on 127.0.0.1:\(taken): Address already in use\n")
        }
    }

    @Test func badInputGetsOneClearLineAndANonZeroExit() throws {
        let missing = try runPoetry(["serve", "poetry/nothere.txt"])
        #expect(missing.status != 0)
        #expect(missing.err == "No such file: poetry/nothere.txt\n")

        let ports = try runPoetry(["get", "abc"])
        #expect(ports.status != 0)
        #expect(ports.err == "Ports must be integers: 'abc'.\n")

        let none = try runPoetry(["get"])
        #expect(none.status != 0)
        #expect(none.err.hasPrefix("Usage: poetry get"))

        let badNumber = try runPoetry(["serve", "--num-bytes", "ten", "poetry/science.txt"])
        #expect(badNumber.status != 0)
        #expect(badNumber.err.split(separator: "\n").count == 1)
        #expect(!badNumber.err.contains("Fatal error"))

        let (server, port) = try startServe(["--async", "poetry/science.txt"])
        defer { server.terminate(); server.waitUntilExit() }
        let inUse = try runPoetry(["serve", "--port", String(port), "poetry/science.txt"])
        #expect(inUse.status != 0)
        #expect(inUse.err == "Cannot listen on 127.0.0.1:\(port): Address already in use\n")
    }

    /// SIGHUP, like SIGINT and SIGTERM, stops `poetry get` (both modes) and `poetry serve` in order, not by death
    /// by the signal: `get` prints its summary and exits 130 (interrupted), `serve` exits 0. Each is signalled once it is mid-work (a read printed, or a client being served).
    @Test(arguments: [SIGTERM, SIGINT, SIGHUP])
    func everyStopSignalStopsTheProgramsInOrder(signo: Int32) throws {
        let (server, port) = try startServe(["--async", "--threads", "1", "--num-bytes", "10", "--delay", "0.2", "poetry/science.txt"])
        defer { server.terminate(); server.waitUntilExit() }
        // The blocking client prints no line per read (as the seed's), only that it started a task.
        for (mode, marker) in [("--blocking", "Task 1: get poetry from"), ("--async", "Task 1: got 10 bytes")] {
            let get = Process()
            get.executableURL = URL(fileURLWithPath: poetryBinary)
            get.arguments = ["get", mode, String(port)]
            get.currentDirectoryURL = URL(fileURLWithPath: projectRoot)
            let out = Pipe()
            get.standardOutput = out
            try get.run()
            var text = ""
            while !text.contains(marker) {
                let data = out.fileHandleForReading.readData(ofLength: 1)
                if data.isEmpty { break }
                text += String(decoding: data, as: UTF8.self)
            }
            kill(get.processIdentifier, signo)
            text += String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            get.waitUntilExit()
            #expect(get.terminationReason == .exit, "get \(mode) was killed by signal \(get.terminationStatus)")
            // Interrupted: the summary so far, then 130, as an interrupted program exits (issue 17's scheme).
            #expect(get.terminationStatus == 130)
            // Stopped mid-poem, not after it (a signal the child cannot act on would let it finish the poem).
            #expect(!text.contains("Got 1 poems"), "get \(mode) ignored the signal: \(text)")
        }
        kill(server.processIdentifier, signo)
        server.waitUntilExit()
        #expect(server.terminationReason == .exit, "serve was killed by signal \(server.terminationStatus)")
        #expect(server.terminationStatus == 0)
    }

    /// A program started with hang-up ignored (`nohup`) keeps ignoring it: the hang-up of a closed terminal is not
    /// a stop then, while SIGTERM still is.
    @Test func aHangUpIgnoredAtStartStaysIgnored() throws {
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/nohup")
        server.arguments = [poetryBinary, "serve", "--async", "--threads", "1", "--num-bytes", "100", "--delay", "0.05", "poetry/science.txt"]
        server.currentDirectoryURL = URL(fileURLWithPath: projectRoot)
        let out = Pipe()
        server.standardOutput = out
        server.standardError = Pipe()
        try server.run()
        defer { if server.isRunning { server.terminate() }; server.waitUntilExit() }
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let byte = out.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty { break }
            line.append(byte)
        }
        let port = try #require(String(decoding: line, as: UTF8.self).split(separator: " ").last.flatMap { UInt16($0.dropLast(2)) })
        kill(server.processIdentifier, SIGHUP)
        // A whole poem (7 sends, 50 ms apart) after the hang-up: a server that took it for a stop would cut it off.
        let client = try Socket.makeStream(for: try SocketAddress(host: "127.0.0.1", port: port), nonBlocking: false)
        defer { close(client) }
        _ = try SocketAddress(host: "127.0.0.1", port: port).withSockAddr { connect(client, $0, $1) }
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received += count
        }
        #expect(received == poem("science").count)
        #expect(server.isRunning)
        kill(server.processIdentifier, SIGTERM)
        server.waitUntilExit()
        #expect(server.terminationReason == .exit && server.terminationStatus == 0)
    }

    /// `--batch-wait` asked for where it cannot work (epoll, or not --async) says so in one line; the fetch still runs.
    @Test(arguments: [["--async", "--reactor", "epoll"], ["--blocking"]])
    func aBatchWaitThatCannotWorkSaysSo(mode: [String]) throws {
        let result = try runPoetry(["get"] + mode + ["--batch-wait", "500", String(closedPortNumber())])
        #expect(result.err.contains("poetry: --batch-wait has no effect here (it needs --async, --reactor io_uring and Linux 6.12 or later)."))
        #expect(result.out.contains("Task 1: failed: Connection refused"))
    }

    @Test func aFailedTaskMakesTheExitStatusNonZero() throws {
        let result = try runPoetry(["get", "--async", String(closedPortNumber())])
        #expect(result.status == 1)
        #expect(result.out.contains("Task 1: failed: Connection refused"))
    }
}
