import Foundation

/// `--threads` for the commands that run several reactors on one port (`serve --async`, `gateway`).
enum ReactorThreadCount {
    static let allowed = 1...64

    /// One reactor per available core, within `allowed`.
    static var perCore: Int { min(max(ProcessInfo.processInfo.activeProcessorCount, 1), allowed.upperBound) }

    /// The one message for a count outside `allowed`.
    static let outOfRange = "--threads must be between \(allowed.lowerBound) and \(allowed.upperBound)."
}
