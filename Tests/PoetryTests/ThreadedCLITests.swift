import Testing

@Suite("poetry get --threaded")
struct ThreadedCLITests {
    @Test func threadedGetPrintsTheBlockingClientsLinesAndFailsATaskAlone() throws {
        let (server, port) = try startServe(["--async", "--delay", "0.002", "poetry/fascination.txt"])
        defer { server.terminate(); server.waitUntilExit() }
        let refused = closedPortNumber()
        let result = try runPoetry(["get", "--threaded", "\(port),\(refused),\(port)"])
        #expect(result.status == 1)
        let lines = result.out.split(separator: "\n").map(String.init)
        #expect(Array(lines.prefix(3)) == [1, 2, 3].map { "Task \($0): get poetry from: 127.0.0.1:\($0 == 2 ? refused : port)" })
        #expect(lines.contains("Task 2: failed: Connection refused"))
        #expect(lines.contains { $0.hasPrefix("Task 1: got 615 bytes of poetry from 127.0.0.1:\(port) in 0:00:") })
        #expect(lines.contains { $0.hasPrefix("Task 3: got 615 bytes of poetry from 127.0.0.1:\(port) in 0:00:") })
        #expect(lines.last?.hasPrefix("Got 2 poems in 0:00:") == true && lines.last?.hasSuffix("; 1 task failed") == true)
        let both = try runPoetry(["get", "--threaded", "--blocking", "\(port)"])
        #expect(both.status != 0 && both.err.contains("Choose one of --blocking, --threaded and --async."))
    }
}
