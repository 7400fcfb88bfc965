import Foundation

/// The project's root, found from this file's path (Tests/Support/…), for the poems, the page and the binary.
public let projectRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
}()

/// The `poetry` executable built beside the running test bundle (any `--scratch-path`), or `POETRY_BINARY`.
public let poetryBinary: String = {
    if let path = ProcessInfo.processInfo.environment["POETRY_BINARY"] { return path }
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("poetry").path
    return FileManager.default.isExecutableFile(atPath: beside) ? beside : "\(projectRoot)/.build/debug/poetry"
}()
