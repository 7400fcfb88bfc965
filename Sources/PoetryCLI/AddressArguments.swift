import ArgumentParser
import Foundation

/// `poetry get`'s command line split in one linear pass: the options go to swift-argument-parser, the addresses
/// around it.
///
/// Why: swift-argument-parser consumes positional values one at a time, each removal searching and rebuilding its
/// split argument list and hashing its input origins, so its cost grows with the square of the positional count
/// (0.04 s at 1,000 addresses, 2.2 s at 10,000, 8.7 s at 20,000; issue 19). A fan-out of 10,000 addresses typed
/// as the seed types them must cost nothing to read. The parser keeps everything it is good at (help, options,
/// errors, validation); it just never sees the addresses.
///
/// Which options take a value is read from the command's own definition (the parser's JSON dump of it), not from
/// a list here that could drift. If the definition is ever outside what this split understands (more than one
/// positional, an option that scans past other options for its value), `split` returns nil and the whole command
/// line goes to the parser as before: slower, never wrong.
struct AddressArguments: Equatable {
    /// The command line with the addresses taken out, in their original order.
    var options: [String]
    /// The positional values, in order (those after `--` included), exactly as the parser would have collected them.
    var addresses: [String]

    /// The spellings (`--timeout`, `-t`) of the options that take the next argument as their value: unless it looks
    /// like an option (the parser's default), or always (`unconditional`, so a value such as `-1` is read and then
    /// refused by name rather than taken for an option).
    struct Definition: Equatable {
        var valueTakingNames: Set<String>
        var unconditionalNames: Set<String> = []
    }

    /// Splits `arguments` (what follows the subcommand's name). Mirrors the parser's rules for the shapes the
    /// definition allows: `--` ends the options; a token starting with `-` (other than `-` alone) is an option, with
    /// `=value` attached or, for an option that takes a value, the next token as its value unless that token itself
    /// looks like an option (the parser then reports the missing value, as before); anything else is an address.
    static func split(_ arguments: [String], definition: Definition) -> AddressArguments {
        var options: [String] = []
        var addresses: [String] = []
        addresses.reserveCapacity(arguments.count)
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                addresses.append(contentsOf: arguments[index...])
                break
            }
            guard argument.utf8.count > 1, argument.utf8.first == UInt8(ascii: "-") else {
                addresses.append(argument)
                continue
            }
            options.append(argument)
            guard index < arguments.endIndex else { continue }
            if definition.unconditionalNames.contains(argument)
                || (definition.valueTakingNames.contains(argument) && arguments[index].utf8.first != UInt8(ascii: "-")) {
                options.append(arguments[index])
                index += 1
            }
        }
        return AddressArguments(options: options, addresses: addresses)
    }

    /// The definition `split` needs, read from the command's argument definitions; nil if the command has anything
    /// `split` does not mirror exactly.
    static func definition(of command: any ParsableCommand.Type) -> Definition? {
        guard let data = command._dumpHelp().data(using: .utf8),
              let dump = try? JSONDecoder().decode(Dump.self, from: data) else { return nil }
        let arguments = dump.command.arguments ?? []
        let positionals = arguments.filter { $0.kind == "positional" }
        guard positionals.count == 1, positionals[0].isRepeating else { return nil }
        var names: Set<String> = []
        var unconditional: Set<String> = []
        for argument in arguments where argument.kind == "option" {
            // `.next` (the default): the value is the following token unless it looks like an option;
            // `.unconditional`: the following token, whatever it is. Others (scanning for a value, several values)
            // would need the parser's own bookkeeping.
            guard argument.parsingStrategy == "default" || argument.parsingStrategy == "unconditional" else { return nil }
            for name in argument.names ?? [] {
                let spelling: String
                switch name.kind {
                case "long": spelling = "--" + name.name
                case "short", "longWithSingleDash": spelling = "-" + name.name
                default: return nil
                }
                names.insert(spelling)
                if argument.parsingStrategy == "unconditional" { unconditional.insert(spelling) }
            }
        }
        return Definition(valueTakingNames: names, unconditionalNames: unconditional)
    }

    /// The parts of the parser's dump (`ToolInfoV0`) read here.
    private struct Dump: Decodable {
        struct Command: Decodable {
            var arguments: [Argument]?
        }
        struct Argument: Decodable {
            struct Name: Decodable {
                var kind: String
                var name: String
            }
            var kind: String
            var isRepeating: Bool
            var parsingStrategy: String
            var names: [Name]?
        }
        var command: Command
    }
}

extension PoetryCommand {
    /// `parseAsRoot`, except that `poetry get`'s addresses skip the parser's quadratic path (see `AddressArguments`).
    static func parseAsRootWithLinearAddresses(_ arguments: [String] = Array(CommandLine.arguments.dropFirst())) throws -> any ParsableCommand {
        guard arguments.first == GetCommand.configuration.commandName,
              let definition = AddressArguments.definition(of: GetCommand.self) else {
            return try parseAsRoot(arguments)
        }
        let split = AddressArguments.split(Array(arguments.dropFirst()), definition: definition)
        let command = try parseAsRoot([arguments[0]] + split.options)
        guard var get = command as? GetCommand else { return command }
        get.addresses = split.addresses
        return get
    }
}
