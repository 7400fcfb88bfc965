import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// `poetry`: the seed's programs and the gateway, as one command.
@main
struct PoetryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "poetry",
        abstract: "Slow poetry servers, blocking and async clients, and an HTTP gateway that streams them live.",
        discussion: """
        With no subcommand, runs the gateway (see `poetry gateway --help`).
        The seed's scenario by hand:
          poetry serve --port 10000 --num-bytes 30 poetry/ecstasy.txt &
          poetry serve --port 10001 poetry/fascination.txt &
          poetry serve --port 10002 poetry/science.txt &
          poetry get --blocking 10000 10001 10002
          poetry get --async 10000 10001 10002
        """,
        version: "poetry-gateway \(PoetryCommand.version)",
        subcommands: [GatewayCommand.self, ServeCommand.self, GetCommand.self],
        defaultSubcommand: GatewayCommand.self
    )

    static let version = "1.0.0"
    static let subcommandNames = ["gateway", "serve", "get", "help"]

    /// Exit statuses, one scheme for every subcommand: usage errors 64 (as the argument parser's own), runtime
    /// failures 1, interrupted 130.
    /// Argument errors get one line on stderr, not a usage dump; help still prints in full.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let first = arguments.first, !first.hasPrefix("-"), !subcommandNames.contains(first) {
            // A word where a subcommand goes would otherwise reach the default subcommand as a stray argument.
            let near = subcommandNames.filter { editDistance(first, $0) <= 2 || $0.hasPrefix(first) }
            let hint = near.isEmpty ? "the commands are gateway, serve and get" : "did you mean '\(near[0])'?"
            Console.err("poetry: unknown command '\(first)': \(hint) (poetry --help)")
            Glibc.exit(ExitCode.validationFailure.rawValue)
        }
        if arguments.isEmpty {
            Console.out("No command given: starting the gateway on port 8080, as `poetry gateway` (`poetry --help` lists serve and get).")
        }
        do {
            var command = try parseAsRootWithLinearAddresses()
            try command.run()
        } catch {
            if exitCode(for: error) == .success || error is CleanExit {
                exit(withError: error)
            }
            if let code = error as? ExitCode {
                Glibc.exit(code.rawValue)
            }
            if let failure = error as? CommandFailure {
                Console.err(failure.message)
                Glibc.exit(failure.status)
            }
            Console.err("poetry: \(message(for: error))")
            Glibc.exit(exitCode(for: error).rawValue)
        }
    }
}

/// A failure the command has already put into words: printed alone, no usage, no stack trace.
struct CommandFailure: Error {
    let message: String
    var status: Int32 = 1
}

/// A reactor backend named on the command line.
extension BackendKindArgument: ExpressibleByArgument {}

/// Levenshtein distance, for suggesting a subcommand to a misspelt one.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    guard !a.isEmpty else { return b.count }
    var previous = Array(0...b.count)
    for (i, x) in a.enumerated() {
        var current = [i + 1]
        for (j, y) in b.enumerated() {
            current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
        }
        previous = current
    }
    return previous[b.count]
}
