import Testing

/// The address list typed to the real binary: taken around the argument parser (issue 19), with the same messages.
@Suite struct AddressCLITests {
    @Test func badAddressesGetTheSameOneLineMessagesWhereverTheyAre() throws {
        let cases: [([String], String)] = [
            (["get", "abc"], "Ports must be integers: 'abc'.\n"),
            (["get", "10000", "--quiet", "10001,x1"], "Ports must be integers: 'x1'.\n"),
            (["get", "--timeout", "5", "10000", "99999"], "Invalid address '99999': expected PORT or HOST:PORT, HOST an IP address or localhost (names are not looked up), PORT 1 to 65535.\n"),
            (["get", "--", "10000", "0"], "Invalid address '0': expected PORT or HOST:PORT, HOST an IP address or localhost (names are not looked up), PORT 1 to 65535.\n"),
            (["get", "10000", "--", "--quiet"], "Ports must be integers: '--quiet'.\n"),
        ]
        for (arguments, message) in cases {
            let result = try runPoetry(arguments)
            #expect(result.status == 64, "\(arguments)")  // a usage error (issue 17's exit-code scheme)
            #expect(result.err == message, "\(arguments)")
        }
    }

    @Test func optionErrorsAndHelpStillComeFromTheParser() throws {
        let missing = try runPoetry(["get", "10000", "--timeout"])
        #expect(missing.status != 0)
        #expect(missing.err.hasPrefix("poetry: Missing value for '--timeout <timeout>'"), "\(missing.err)")
        let help = try runPoetry(["get", "10000", "--help"])
        #expect(help.status == 0)
        #expect(help.out.contains("USAGE: poetry get"), "\(help.out)")
        #expect(help.out.contains("--max-poem-bytes"))
    }
}
