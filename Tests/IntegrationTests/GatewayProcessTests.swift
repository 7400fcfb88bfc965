#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Poetry
import Reactor
import TestSupport
import Testing

/// The built gateway as a separate process, for what a test process cannot do to itself: a descriptor limit of its
/// own, and signals.
final class GatewayProcess {
    let process = Process()
    let port: UInt16
    /// The first line it printed ("Poetry gateway on … (reactor: …, N threads)").
    let banner: String
    private let errors = Pipe()
    private let output = Pipe()

    /// `namedFolders`: pass this checkout's poetry/ and public/ on the command line (false: the gateway finds them);
    /// `workingDirectory`: where it runs (default: this test process's).
    init(_ arguments: [String] = [], descriptorLimit: Int? = nil, namedFolders: Bool = true, workingDirectory: String? = nil) throws {
        let binary = poetryBinary
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build the poetry executable first")
        let folders = namedFolders ? ["--poetry-dir", "\(projectRoot)/poetry", "--public-dir", "\(projectRoot)/public"] : []
        let gatewayArguments = ["gateway", "--port", "0"] + folders + arguments
        if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        if let descriptorLimit {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            process.arguments = ["--nofile=\(descriptorLimit):\(descriptorLimit)", binary] + gatewayArguments
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = gatewayArguments
        }
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let text = Self.readLine(from: output)
        guard let match = text.firstMatch(of: /127\.0\.0\.1:(\d+)\//), let port = UInt16(match.output.1) else {
            throw TestFailure("gateway did not start: \(text)")
        }
        self.port = port
        banner = text
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// The next line the process prints on stdout (empty at the end).
    func nextOutputLine() -> String { Self.readLine(from: output) }

    private static func readLine(from pipe: Pipe) -> String {
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let byte = pipe.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty { break }
            line.append(byte)
        }
        return String(decoding: line, as: UTF8.self)
    }

    /// User + system CPU seconds the process has used.
    var cpuSeconds: Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return (Double(fields[11]) ?? 0 + 0) / 100 + (Double(fields[12]) ?? 0) / 100
    }

    func signal(_ signo: Int32) { kill(process.processIdentifier, signo) }

    /// Waits up to `limit` seconds for the process to exit; returns the seconds it took, or nil.
    func waitForExit(limit: Double) -> Double? {
        let start = MonotonicClock.now()
        while process.isRunning {
            if MonotonicClock.now() - start > MonotonicClock.nanoseconds(fromSeconds: limit) { return nil }
            usleep(5_000)
        }
        return MonotonicClock.seconds(fromNanoseconds: MonotonicClock.now() - start)
    }

    /// Everything written to stderr so far (after the process ended).
    func stderrText() -> String {
        String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            _ = waitForExit(limit: 5)
        }
    }
}

@Suite("The gateway process: descriptor exhaustion, signals", .serialized)
struct GatewayProcessTests {
    @Test func itKeepsServingAfterRunningOutOfDescriptorsWithoutSpinning() throws {
        let gateway = try GatewayProcess(descriptorLimit: 256)
        defer { gateway.stop() }
        #expect(CurlClient().request("\(gateway.url)/healthz").status == 200)
        // 400 connections against a limit of 256: the kernel queues them, the gateway cannot accept them all.
        var clients: [RawClient] = []
        for _ in 0..<400 {
            if let client = try? RawClient(port: gateway.port) { clients.append(client) }
        }
        usleep(300_000)
        let cpuBefore = gateway.cpuSeconds
        usleep(1_500_000)
        let cpuAtLimit = gateway.cpuSeconds - cpuBefore
        #expect(cpuAtLimit < 0.3, "the gateway used \(cpuAtLimit)s of CPU in 1.5s at the descriptor limit")
        for client in clients { client.hangUp() }
        clients.removeAll()
        var recovered = false
        for _ in 0..<100 {
            if CurlClient().request("\(gateway.url)/healthz", timeout: 1).status == 200 { recovered = true; break }
            usleep(50_000)
        }
        #expect(recovered, "the gateway serves again once the connections are gone")
        gateway.stop()
        let warnings = gateway.stderrText().split(separator: "\n").filter { $0.contains("Too many open files") }
        #expect(!warnings.isEmpty, "the condition is logged")
        #expect(warnings.count <= 4, "logged at most once a second, not \(warnings.count) times")
    }

    /// Fetch sockets come out of the gateway's descriptor table: a fetch that would take more than what the limit
    /// leaves beside the HTTP connections is refused (429) before any socket is opened, instead of running the
    /// process out of descriptors (accept and every other fetch with it); one within the budget runs whole.
    @Test func fetchesPastTheSocketBudgetAreRefusedBeforeDescriptorsRunOut() throws {
        let gateway = try GatewayProcess(descriptorLimit: 64)
        defer { gateway.stop() }
        // The poetry server runs in this (test) process, so only the gateway's own sockets count against its limit.
        let loop = try BackgroundReactor()
        defer { loop.stop() }
        let poem = try PoemCatalog.read(path: "\(projectRoot)/poetry/science.txt")
        let port = try loop.sync { [reactor = loop.reactor] () -> Int in
            let server = try AsyncPoetryServer(reactor: reactor, config: PoetryServerConfig(
                poem: poem, address: SocketAddress(host: "127.0.0.1", port: 0), numBytes: 200, delay: 0.01))
            ServerKeeper.keep(server)
            return Int(server.port)
        }
        let note = gateway.nextOutputLine()
        #expect(note.contains("does not fit in this process's descriptor limit (64"), "\(note)")
        // 100 targets against a limit of 64: refused whole, with the reason.
        let targets = Array(repeating: String(port), count: 100).joined(separator: ",")
        let refused = CurlClient().request("\(gateway.url)/api/fetch?targets=\(targets)&format=ndjson&timeout=2")
        #expect(refused.status == 429)
        #expect(refused.text.contains("too_many_fetch_sockets"), "\(refused.text)")
        #expect(CurlClient().request("\(gateway.url)/healthz").status == 200)
        // Afterwards a small fetch goes through whole.
        let again = try ndjson(CurlClient().request("\(gateway.url)/api/fetch?targets=\(port),\(port)&format=ndjson").text)
        #expect(again.last?["poems"] as? Int == 2)
    }

    /// select's descriptor ceiling is said when the gateway starts, not found out at the thousandth client.
    @Test func aSelectGatewaySaysItsDescriptorCeilingAtStart() throws {
        let gateway = try GatewayProcess(["--reactor", "select"])
        defer { gateway.stop() }
        let note = gateway.nextOutputLine()
        #expect(note.hasPrefix("Note: select watches only descriptors below \(FD_SETSIZE)"), "\(note)")
        let plain = try GatewayProcess()
        defer { plain.stop() }
        #expect(plain.nextOutputLine().hasPrefix("Open "))
    }

    /// SIGTERM, SIGINT and SIGHUP (a closed terminal, a service manager's stop) all stop it in order, on one
    /// reactor thread or several (each thread's streams end with their final event).
    @Test(arguments: zip([SIGTERM, SIGHUP, SIGTERM], [1, 1, 3]))
    func aStopSignalEndsEveryOpenStreamWithAFinalEventAndExitsZero(signo: Int32, threads: Int) throws {
        let gateway = try GatewayProcess(["--threads", String(threads)])
        #expect(gateway.banner.contains(threads == 1 ? "1 thread)" : "\(threads) threads)"), "\(gateway.banner)")
        defer { gateway.stop() }
        let created = CurlClient().request("POST", "\(gateway.url)/api/servers",
                                           body: Array(#"{"poem":"ecstasy","mode":"async","numBytes":10,"delay":0.1}"#.utf8))
        let port = try jsonObject(created.body)["port"] as! Int
        let responses = Locked<[CurlResponse]>([])
        let done = DispatchSemaphore(value: 0)
        let url = gateway.url
        WorkerThread.start(name: "streams") {
            let all = CurlClient.concurrent(Array(repeating: "\(url)/api/fetch?targets=\(port)&format=ndjson", count: 100))
            responses.withLock { $0 = all }
            done.signal()
        }
        var open = 0.0
        for _ in 0..<200 {
            open = TestGatewayMetrics.value("poetry_streams_active", url: url) ?? 0
            if open == 100 { break }
            usleep(20_000)
        }
        #expect(open == 100)
        gateway.signal(signo)
        let took = gateway.waitForExit(limit: 3)
        #expect(took != nil && took! < 2, "exited after \(String(describing: took))s")
        #expect(gateway.process.terminationReason == .exit, "killed by signal \(gateway.process.terminationStatus)")
        #expect(gateway.process.terminationStatus == 0)
        #expect(done.wait(timeout: .now() + 5) == .success)
        let all = responses.withLock { $0 }
        #expect(all.count == 100)
        for response in all {
            #expect(response.error == nil, "a stream did not end with its terminating chunk: \(response.error ?? "")")
            #expect(try ndjson(response.text).last?["event"] as? String == "shutdown")
        }
    }

    @Test func aSecondSigtermExitsAtOnce() throws {
        // A blocking server mid-poem makes the orderly stop wait for its thread; the second signal does not wait.
        let gateway = try GatewayProcess()
        defer { gateway.stop() }
        let created = CurlClient().request("POST", "\(gateway.url)/api/servers",
                                           body: Array(#"{"poem":"ecstasy","mode":"blocking","numBytes":10,"delay":5}"#.utf8))
        #expect(created.status == 201)
        gateway.signal(SIGTERM)
        gateway.signal(SIGTERM)
        let took = gateway.waitForExit(limit: 3)
        #expect(took != nil && took! < 1, "exited after \(String(describing: took))s")
    }
}

enum TestGatewayMetrics {
    static func value(_ name: String, url: String) -> Double? {
        let text = CurlClient().request("\(url)/metrics", timeout: 2).text
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.split(separator: " ").last ?? "")
        }
        return nil
    }
}

/// Keeps servers made on a background reactor alive for the test's length.
enum ServerKeeper {
    /// Locked: suites run in parallel, each appending from its own background reactor.
    static let kept = Locked<[AnyObject]>([])
    static func keep(_ object: AnyObject) { kept.withLock { $0.append(object) } }
}
