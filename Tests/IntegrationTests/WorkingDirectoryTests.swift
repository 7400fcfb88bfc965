import Foundation
import TestSupport
import Testing

/// The gateway finds its own poems and page wherever it is started from, and refuses folders that are not there
/// instead of serving nothing.
@Suite("The gateway and its working directory")
struct WorkingDirectoryTests {
    @Test func startedFromAnotherFolderItServesItsOwnPoemsAndPage() throws {
        let gateway = try GatewayProcess(["--demo", "--demo-delay", "0.001"], namedFolders: false, workingDirectory: "/")
        defer { gateway.stop() }
        let client = CurlClient()
        let page = client.request("\(gateway.url)/")
        #expect(page.status == 200)
        #expect(page.header("Content-Type") == "text/html; charset=utf-8")
        let poems = try jsonArray(client.request("\(gateway.url)/api/poems").body)
        #expect(poems.contains { $0["name"] as? String == "ecstasy" })
        let servers = try jsonArray(client.request("\(gateway.url)/api/servers").body)
        #expect(servers.count == 3)
    }

    @Test(arguments: [(["--poetry-dir", "/nonexistent"], "--poetry-dir /nonexistent: no such folder"),
                      (["--public-dir", "/nonexistent"], "--public-dir /nonexistent: no such folder"),
                      (["--poetry-dir", "/proc/self"], "--poetry-dir /proc/self: no poems (NAME.txt) in that folder")])
    func aFolderThatIsNotThereIsRefused(arguments: [String], message: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: poetryBinary)
        process.arguments = ["gateway", "--port", "0"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = Pipe()
        try process.run()
        // A gateway that starts anyway must not hang the test: it is stopped after a while and the test fails.
        let end = Date().addingTimeInterval(10)
        while process.isRunning && Date() < end { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            Issue.record("the gateway started with \(arguments)")
        }
        process.waitUntilExit()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 1)
        #expect(text == "poetry gateway: \(message)\n")
    }
}
