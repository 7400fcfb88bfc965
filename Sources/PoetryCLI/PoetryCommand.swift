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
        subcommands: [GatewayCommand.self, ServeCommand.self, GetCommand.self],
        defaultSubcommand: GatewayCommand.self
    )

    /// Argument errors get one line on stderr, not a usage dump; help still prints in full.
    static func main() {
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
