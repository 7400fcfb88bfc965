import ArgumentParser
import Reactor

/// `--reactor select|poll|epoll`.
struct BackendKindArgument: Sendable {
    let kind: BackendKind

    init?(argument: String) {
        guard let kind = try? BackendKind(name: argument) else { return nil }
        self.kind = kind
    }

    static let allValueStrings = BackendKind.allCases.map(\.rawValue)
    var defaultValueDescription: String { kind.rawValue }
}

extension BackendKindArgument {
    static let `default` = BackendKindArgument(argument: BackendKind.default.rawValue)!
}

/// Prints to stderr and fails the command with that one line.
func fail(_ message: String, status: Int32 = 1) -> CommandFailure {
    CommandFailure(message: message, status: status)
}
