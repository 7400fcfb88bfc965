import Poetry
import Reactor
import TestSupport
import Testing

@Suite("The seed's output formats")
struct FormatTests {
    @Test(arguments: [
        (10.126361, "0:00:10.126361"), (23.065661, "0:00:23.065661"), (0, "0:00:00"), (5, "0:00:05"),
        (3723.5, "1:02:03.500000"), (0.000001, "0:00:00.000001"), (59.9999996, "0:01:00"),
    ])
    func timedeltaPrintsAsPythonDoes(seconds: Double, expected: String) {
        #expect(formatTimedelta(seconds) == expected)
    }

    @Test func targetsParseAsTheSeedsClientTakesThem() throws {
        let parsed = try FetchTargets.parse(["10000", "127.0.0.1:10001", "[::1]:10002", "localhost:10003"])
        #expect(parsed.map(\.address.description) == ["127.0.0.1:10000", "127.0.0.1:10001", "[::1]:10002", "127.0.0.1:10003"])
        #expect(parsed.map(\.number) == [1, 2, 3, 4])
    }

    @Test(arguments: ["abc", "127.0.0.1:x", "10000a", "127.0.0.1:", "1.5"])
    func nonIntegerPortsAreRefusedInTheSeedsWords(text: String) {
        #expect(throws: FetchTargets.ParseError.portNotInteger(text)) { try FetchTargets.parse([text]) }
        #expect(FetchTargets.ParseError.portNotInteger(text).description == "Ports must be integers: '\(text)'.")
    }

    @Test(arguments: ["0", "70000", "example.com:80", ":80"])
    func impossibleTargetsAreRefused(text: String) {
        #expect(throws: FetchTargets.ParseError.invalid(text)) { try FetchTargets.parse([text]) }
    }

    /// The lines of a transcript, checked against the same transcript appended as bytes (what `poetry get` prints):
    /// both ways must say exactly the same thing.
    private func run(_ mode: FetchMode, _ events: [FetchEvent], sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
        var transcript = SeedTranscript(mode: mode)
        let lines = events.flatMap { transcript.lines(for: $0) }
        var appended = SeedTranscript(mode: mode)
        var bytes: [UInt8] = []
        for event in events { appended.appendLines(for: event, to: &bytes) }
        #expect(String(decoding: bytes, as: UTF8.self) == lines.map { $0 + "\n" }.joined(), sourceLocation: sourceLocation)
        return lines
    }

    @Test func aReadsLineAppendedAsBytesIsTheSameLine() {
        let tasks = try! FetchTargets.parse(["10000", "[::1]:10001"] + Array(repeating: "65535", count: 10))
        for (task, bytes) in [(1, 0), (2, 7), (12, 1_234_567), (11, 10), (99, 100)] {
            var transcript = SeedTranscript(mode: .async)
            var output: [UInt8] = []
            let started = FetchEvent.started(mode: .async, tasks: tasks)
            _ = transcript.lines(for: started)
            let event = FetchEvent.received(task: task, bytes: bytes, received: bytes, t: 0.5)
            let expected = transcript.lines(for: event)
            transcript.appendLines(for: event, to: &output)
            #expect(String(decoding: output, as: UTF8.self) == expected.map { $0 + "\n" }.joined())
        }
    }

    private let seedTasks = try! FetchTargets.parse(["10000", "10001"])

    @Test func blockingTranscriptIsTheSeedsLines() {
        let lines = run(.blocking, [
            .started(mode: .blocking, tasks: seedTasks),
            .connecting(task: 1, t: 0),
            .connected(task: 1, t: 0.001),
            .received(task: 1, bytes: 30, received: 30, t: 0.01),
            .finished(task: 1, bytes: 3003, poem: Array(repeating: 65, count: 3003), t: 10.126361),
            .connecting(task: 2, t: 10.126361),
            .failed(task: 2, reason: "Connection refused", t: 10.2),
            .summary(poems: 1, failed: 1, elapsed: 10.2),
        ])
        #expect(lines == [
            "Task 1: get poetry from: 127.0.0.1:10000",
            "Task 1: got 3003 bytes of poetry from 127.0.0.1:10000 in 0:00:10.126361",
            "Task 2: get poetry from: 127.0.0.1:10001",
            "Task 2: failed: Connection refused",
            "Got 1 poems in 0:00:10.200000; 1 task failed",
        ])
    }

    @Test func asyncTranscriptIsTheSeedsLines() {
        let lines = run(.async, [
            .started(mode: .async, tasks: seedTasks),
            .connecting(task: 1, t: 0), .connecting(task: 2, t: 0),
            .received(task: 1, bytes: 30, received: 30, t: 0.1),
            .received(task: 2, bytes: 10, received: 10, t: 0.1),
            .received(task: 2, bytes: 3, received: 13, t: 0.2),
            .finished(task: 2, bytes: 13, poem: [], t: 0.3),
            .finished(task: 1, bytes: 30, poem: [], t: 0.3),
            .summary(poems: 2, failed: 0, elapsed: 10.133169),
        ])
        #expect(lines == [
            "Task 1: got 30 bytes of poetry from 127.0.0.1:10000",
            "Task 2: got 10 bytes of poetry from 127.0.0.1:10001",
            "Task 2: got 3 bytes of poetry from 127.0.0.1:10001",
            "Task 2 finished",
            "Task 1 finished",
            "Task 1: 30 bytes of poetry",
            "Task 2: 13 bytes of poetry",
            "Got 2 poems in 0:00:10.133169",
        ])
    }

    @Test func serverEventsUseTheSeedsWords() throws {
        let peer = try SocketAddress(host: "127.0.0.1", port: 54321)
        #expect(PoetryServerEvent.clientConnected(peer).seedLine == "Somebody at ('127.0.0.1', 54321) wants poetry!")
        #expect(PoetryServerEvent.sending(bytes: 10).seedLine == "Sending 10 bytes")
    }

    @Test func catalogListsThePoemsWithTitlesAndSizes() {
        let catalog = PoemCatalog(directory: "\(projectRoot)/poetry")
        #expect(catalog.entries.map(\.name) == ["alla_sera", "ecstasy", "fascination", "science"])
        #expect(catalog.entry(named: "ecstasy")?.bytes == 3003)
        #expect(catalog.entry(named: "ecstasy")?.title == "The Ecstasy")
        #expect(catalog.entry(named: "missing") == nil)
    }

    @Test func aMissingPoemFileSaysSo() {
        #expect(throws: (any Error).self) { try PoemCatalog.read(path: "/nonexistent/x.txt") }
        do {
            _ = try PoemCatalog.read(path: "/nonexistent/x.txt")
        } catch {
            #expect(error.description == "No such file: /nonexistent/x.txt")
        }
    }
}
