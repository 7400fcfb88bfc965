import HTTP1
import HTTPServer
import Poetry
import Reactor

/// The query of `GET /api/fetch`, checked whole before any socket exists. A parameter the API does not know, or
/// one given twice, is refused by name: a typo such as `timout=5` would otherwise fall back to a default unseen.
struct FetchRequest {
    static let parameters = ["mode", "targets", "timeout", "format"]

    let mode: FetchMode
    let tasks: [FetchTask]
    let timeout: Double
    let format: FetchFormat

    /// Threads the fetch will hold: one for blocking, one per task for threaded, none for async.
    var threadsNeeded: Int {
        switch mode {
        case .blocking: return 1
        case .threaded: return tasks.count
        case .async: return 0
        }
    }

    /// Sockets the fetch holds at once: every target's for async and threaded, one at a time for blocking.
    var socketsNeeded: Int {
        mode == .blocking ? 1 : tasks.count
    }

    static func parse(_ request: HTTPRequest, config: GatewayConfig) throws(GatewayError) -> FetchRequest {
        let items = request.queryItems
        var seen: [String] = []
        for (name, _) in items {
            guard parameters.contains(name) else {
                throw .badRequest("unknown parameter '\(name)': use \(parameters.joined(separator: ", "))")
            }
            guard !seen.contains(name) else { throw .badRequest("parameter '\(name)' is given more than once") }
            seen.append(name)
        }
        func value(_ name: String) -> String? { items.first { $0.name == name }?.value }

        let mode: FetchMode
        switch value("mode") ?? "async" {
        case "async": mode = .async
        case "blocking": mode = .blocking
        case "threaded": mode = .threaded
        case let other: throw .badRequest("unknown mode '\(other)': use async, blocking or threaded")
        }
        guard let targetText = value("targets"), !targetText.isEmpty else {
            throw .badRequest("give targets, e.g. targets=10000,10001,127.0.0.1:10002")
        }
        let parts = targetText.split(separator: ",", omittingEmptySubsequences: false).map { String($0).trimmingSpaces() }
        guard parts.count <= config.maxTargets else { throw .tooManyTargets(config.maxTargets) }
        let tasks: [FetchTask]
        do throws(FetchTargets.ParseError) {
            tasks = try FetchTargets.parse(parts)
        } catch {
            throw .badRequest("bad target: \(error.description)")
        }
        if !config.allowRemoteTargets, let remote = tasks.first(where: { !$0.address.isLoopback }) {
            throw .forbidden("target \(remote.address) is outside loopback; the gateway fetches from this machine only unless started with --allow-remote-targets")
        }
        var timeout = config.fetchTimeout
        if let text = value("timeout") {
            guard let seconds = Double(text), seconds.isFinite, seconds > 0, seconds <= 3600 else {
                throw .badRequest("timeout must be a number of seconds above 0 and at most 3600, not '\(text)'")
            }
            timeout = seconds
        }
        let format = try FetchFormat.choose(query: value("format"), accept: request.headers["Accept"])
        return FetchRequest(mode: mode, tasks: tasks, timeout: timeout, format: format)
    }
}
