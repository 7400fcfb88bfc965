import ArgumentParser

/// `poetry gateway`: the HTTP API and page (see the Gateway module).
struct GatewayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Serve the HTTP API and page that start poetry servers and stream fetches live."
    )

    func run() throws {
        throw CommandFailure(message: "the gateway is not built yet")
    }
}
