import ArgumentParser
import Foundation
import Poetry
@testable import PoetryCLI
import Testing

/// `poetry get`'s addresses are split from its options in one linear pass (`AddressArguments`); everything else is
/// still swift-argument-parser's. These tests hold the split to the parser's own results and to linear time.
@Suite struct AddressArgumentsTests {
    /// Every field of a parsed `get`, so two parses can be compared whole.
    private static func fields(_ command: any ParsableCommand) -> String {
        guard let get = command as? GetCommand else { return "not get: \(type(of: command))" }
        return "blocking=\(get.blocking) threaded=\(get.threaded) async=\(get.asynchronous) reactor=\(get.reactor.kind) "
            + "timeout=\(get.timeout) maxPoemBytes=\(get.maxPoemBytes) fetchDeadline=\(String(describing: get.fetchDeadline)) "
            + "printPoems=\(get.printPoems) quiet=\(get.quiet) addresses=\(get.addresses)"
    }

    /// What either path made of a command line: the fields, or the message and exit code the user would see.
    private static func outcome(_ parse: () throws -> any ParsableCommand) -> String {
        do {
            return fields(try parse())
        } catch {
            return "error: \(PoetryCommand.fullMessage(for: error)) exit \(PoetryCommand.exitCode(for: error).rawValue)"
        }
    }

    @Test func theSplitIsTakenForGetSoTheFastPathIsReallyUsed() throws {
        let definition = try #require(AddressArguments.definition(of: GetCommand.self))
        // Read from the command's definition: exactly its options that take a value, none of its flags.
        #expect(definition.valueTakingNames == ["--reactor", "--batch-wait", "--timeout", "--max-poem-bytes", "--fetch-deadline"])
    }

    @Test(arguments: [
        ["get", "10000", "10001", "10002"],
        ["get", "--async", "10000", "--timeout", "5", "10001", "--reactor", "poll", "127.0.0.1:10002", "--quiet"],
        ["get", "--timeout=2.5", "10000,10001", "10002", "--max-poem-bytes", "100", "--print-poems"],
        ["get", "--blocking", "--", "10000", "--not-an-option", "-5"],
        ["get", "--fetch-deadline", "3", "10000", "--", "10001", "--", "10002"],
        ["get", "--threaded", "--reactor=select", "10000,abc", "99999", "0"],
        ["get", "-", "10000"],
        ["get", "--async", "10000", "--batch-wait", "0", "10001"],
        ["get"],
        ["get", "--quiet"],
    ])
    func addressesAndOptionsParseAsTheParserAloneParsesThem(_ arguments: [String]) {
        let alone = Self.outcome { try PoetryCommand.parseAsRoot(arguments) }
        let split = Self.outcome { try PoetryCommand.parseAsRootWithLinearAddresses(arguments) }
        #expect(split == alone)
        #expect(!split.hasPrefix("error"), "\(split)")
    }

    @Test(arguments: [
        ["get", "--timeout"],
        ["get", "10000", "--timeout"],
        ["get", "--timeout", "--quiet", "10000"],
        ["get", "--timeout", "-1", "10000"],
        ["get", "--timeout", "0", "10000"],
        ["get", "--batch-wait", "-1", "10000"],
        ["get", "--bogus", "10000"],
        ["get", "10000", "--bogus=1", "10001"],
        ["get", "--reactor", "nope", "10000"],
        ["get", "--blocking", "--async", "10000"],
        ["get", "--max-poem-bytes", "ten", "10000"],
        ["get", "--help", "10000"],
        ["get", "10000", "-h"],
    ])
    func errorsAndHelpAreTheParsersOwn(_ arguments: [String]) {
        let alone = Self.outcome { try PoetryCommand.parseAsRoot(arguments) }
        let split = Self.outcome { try PoetryCommand.parseAsRootWithLinearAddresses(arguments) }
        #expect(split == alone)
        // An error, or `--help` (which the parser answers with its own help command, printing get's help).
        #expect(split.hasPrefix("error") || split == "not get: HelpCommand", "\(split)")
    }

    @Test func otherCommandsGoToTheParserUntouched() throws {
        for arguments in [["serve", "--port", "10000", "poetry/science.txt"], ["gateway", "--port", "0"], ["--help"]] {
            let alone = Self.outcome { try PoetryCommand.parseAsRoot(arguments) }
            let split = Self.outcome { try PoetryCommand.parseAsRootWithLinearAddresses(arguments) }
            #expect(split == alone)
        }
    }

    /// The address list as `poetry get` turns it into tasks: the split, the parser on the rest, then each address
    /// (commas splitting one argument into several, as in `GetCommand.run`) checked by `FetchTargets`.
    private static func parseToTasks(_ arguments: [String]) throws -> Int {
        let command = try PoetryCommand.parseAsRootWithLinearAddresses(arguments)
        let get = try #require(command as? GetCommand)
        return try FetchTargets.parse(get.addresses.flatMap { $0.split(separator: ",").map(String.init) }).count
    }

    /// `count` addresses typed both ways: the seed's separate arguments, or comma-joined (up to 1,000 to an argument,
    /// as a shell would pass them, each well under the kernel's 128 KiB per argument).
    private static func commandLine(addresses count: Int, commaJoined: Bool) -> [String] {
        let one = "127.0.0.1:10000"
        let addresses = commaJoined
            ? Array(repeating: Array(repeating: one, count: 1000).joined(separator: ","), count: count / 1000)
            : Array(repeating: one, count: count)
        return ["get", "--async", "--timeout", "5"] + addresses + ["--quiet"]
    }

    /// Linear, measured as ratios on this machine: from 10,000 addresses to 100,000 the parse may take at most ~15
    /// times as long (a quadratic parse takes 100 times: 2.2 s at 10,000 in a release build, minutes at 100,000).
    /// The step from 1,000 to 10,000 is held to the same, so a quadratic parse fails in seconds rather than after
    /// the minutes its 100,000 would take: each size's runs are given at most 20 times the smaller size's best and
    /// are not waited for beyond it. The fastest of several runs of each size counts, so a neighbour's burst of CPU
    /// does not decide it.
    @Test(.serialized, arguments: [false, true])
    func parseTimeGrowsLinearlyFromTenThousandToAHundredThousandAddresses(commaJoined: Bool) throws {
        var previousBest = Double.infinity
        var previousSize = 0
        for size in [1_000, 10_000, 100_000] {
            let arguments = Self.commandLine(addresses: size, commaJoined: commaJoined)
            var best = Double.infinity
            for _ in 0..<(size < 100_000 ? 5 : 3) {
                let run = BackgroundParse(arguments: arguments)
                let limit = 20 * previousBest
                let seconds = try #require(run.wait(upTo: limit),
                                           "\(size) addresses took over \(limit) s (\(previousSize): \(previousBest) s)")
                #expect(run.tasks == size)
                best = min(best, seconds)
            }
            if previousSize > 0 {
                let ratio = best / previousBest
                print("parse: \(previousSize) addresses \(previousBest) s, \(size) \(best) s: \(ratio)× (comma-joined: \(commaJoined))")
                #expect(ratio < 15, "\(previousSize) addresses: \(previousBest) s; \(size): \(best) s (\(ratio)×)")
            }
            previousBest = best
            previousSize = size
        }
    }

    fileprivate static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// One parse on a thread of its own, so a test can stop waiting for a parse that is already too slow.
    private final class BackgroundParse: @unchecked Sendable {
        // Written by the thread before it signals `done`, read after: the semaphore orders the two.
        private(set) var tasks = 0
        private var elapsed = 0.0
        private let done = DispatchSemaphore(value: 0)

        init(arguments: [String]) {
            Thread.detachNewThread { [self] in
                let start = ContinuousClock.now
                tasks = (try? AddressArgumentsTests.parseToTasks(arguments)) ?? -1
                elapsed = AddressArgumentsTests.seconds(ContinuousClock.now - start)
                done.signal()
            }
        }

        /// The parse's seconds, or nil if it has not finished within `limit` seconds.
        func wait(upTo limit: Double) -> Double? {
            guard limit.isFinite else {
                done.wait()
                return elapsed
            }
            return done.wait(timeout: .now() + limit) == .success ? elapsed : nil
        }
    }
}
