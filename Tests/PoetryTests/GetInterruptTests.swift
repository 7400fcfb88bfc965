#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TestSupport
import Testing

/// `poetry get` as a person uses it: --quiet keeps the totals right, and Ctrl-C on an async fetch says what it
/// had and exits 130.
@Suite("poetry get: --quiet and Ctrl-C")
struct GetInterruptTests {
    @Test func quietStillCountsEveryByte() throws {
        let (server, port) = try startServe(["--async", "--delay", "0.001", "--num-bytes", "160", "poetry/science.txt"])
        defer { server.terminate(); server.waitUntilExit() }
        let result = try runPoetry(["get", "--async", "--quiet", String(port)])
        #expect(result.status == 0)
        #expect(result.out.contains("Task 1: 653 bytes of poetry\n"), "\(result.out)")
        #expect(!result.out.contains("got 160 bytes"))
        // A task that fails after a read (one send, then a stall far longer than --timeout): its total is what
        // it received, as without --quiet.
        let (stalling, stallingPort) = try startServe(["--async", "--delay", "60", "--num-bytes", "160", "poetry/science.txt"])
        defer { stalling.terminate(); stalling.waitUntilExit() }
        let loud = try runPoetry(["get", "--async", "--timeout", "0.5", String(stallingPort)])
        let quiet = try runPoetry(["get", "--async", "--quiet", "--timeout", "0.5", String(stallingPort)])
        #expect(loud.out.contains("Task 1: 160 bytes of poetry\n"), "\(loud.out)")
        #expect(quiet.out.contains("Task 1: 160 bytes of poetry\n"), "\(quiet.out)")
        #expect(quiet.status == 1)
    }

    @Test func ctrlCOnAnAsyncFetchPrintsTheSummaryAndExits130() throws {
        // 10 bytes a second: the fetch is still running when the interrupt comes.
        let (server, port) = try startServe(["--async", "--delay", "1", "--num-bytes", "10", "poetry/science.txt"])
        defer { server.terminate(); server.waitUntilExit() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: poetryBinary)
        process.arguments = ["get", "--async", String(port)]
        let out = Pipe(), err = Pipe()
        (process.standardOutput, process.standardError) = (out, err)
        try process.run()
        // The first read's line shows the fetch is under way (and its signal handler installed).
        var first = Data()
        while !first.contains(UInt8(ascii: "\n")) {
            let byte = out.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty { break }
            first.append(byte)
        }
        #expect(String(decoding: first, as: UTF8.self) == "Task 1: got 10 bytes of poetry from 127.0.0.1:\(port)\n")
        kill(process.processIdentifier, SIGINT)
        let rest = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        #expect(rest.contains("Task 1: 10 bytes of poetry\n") || rest.contains("Task 1: 20 bytes of poetry\n"), "\(rest)")
        #expect(rest.contains("Got 0 poems in"), "\(rest)")
        #expect(errors == "Interrupted: 1 task unfinished.\n")
    }
}
