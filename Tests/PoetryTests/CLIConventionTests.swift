import Foundation
import Testing

/// What swift-argument-parser users expect of a command line: --version, one exit-code scheme (usage errors 64,
/// runtime failures 1, interrupted 130), a negative number refused by name, a misspelt subcommand suggested.
@Suite("CLI conventions")
struct CLIConventionTests {
    @Test func versionIsPrinted() throws {
        let result = try runPoetry(["--version"])
        #expect(result.status == 0)
        #expect(result.out == "poetry-gateway 1.0.0\n")
    }

    @Test(arguments: [
        (["get"], "Usage: poetry get"),
        (["get", "abc"], "Ports must be integers: 'abc'."),
        (["get", "--blocking", "--async", "1234"], "poetry: Choose one of --blocking, --threaded and --async."),
        (["serve", "--delay", "-1", "poetry/science.txt"], "poetry: --delay must be zero or more seconds."),
        (["get", "--timeout", "-1", "1234"], "poetry: --timeout must be a positive number of seconds."),
        (["get", "--batch-wait", "-1", "1234"], "poetry: --batch-wait must be 0 to 100000 microseconds."),
        (["get", "--batch-wait", "200000", "1234"], "poetry: --batch-wait must be 0 to 100000 microseconds."),
        (["gateway", "--threads", "0"], "poetry: --threads must be between 1 and 64."),
        (["gateway", "--threads", "-1"], "poetry: --threads must be between 1 and 64."),
        (["gateway", "--threads", "4", "--max-connections", "3"], "poetry: --threads must not exceed --max-connections"),
        (["serv"], "poetry: unknown command 'serv': did you mean 'serve'? (poetry --help)"),
        (["gte", "1234"], "poetry: unknown command 'gte': did you mean 'get'? (poetry --help)"),
        (["frobnicate"], "poetry: unknown command 'frobnicate': the commands are gateway, serve and get (poetry --help)"),
    ])
    func usageErrorsExit64WithOneClearMessage(arguments: [String], message: String) throws {
        let result = try runPoetry(arguments)
        #expect(result.status == 64, "\(arguments): \(result.status)")
        #expect(result.err.hasPrefix(message), "\(arguments): \(result.err)")
    }

    @Test(arguments: ["serve", "gateway"])
    func helpKeepsTheThreadsDefaultInItsColumn(command: String) throws {
        let help = try runPoetry([command, "--help"]).out
        let lines = help.split(separator: "\n")
        let threads = try #require(lines.firstIndex { $0.hasPrefix("  --threads") })
        let entry = lines[threads...].prefix { $0 == lines[threads] || $0.hasPrefix("                          ") }
        let words = entry.joined(separator: " ").split(separator: " ").joined(separator: " ")
        #expect(words.contains("Default: one per available core"), "\(entry)")
        #expect(!help.contains("\n        Default:"))
    }
}
