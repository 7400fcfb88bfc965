@testable import Gateway
import Testing

/// `/api/fetch` picks its format from `Accept` as RFC 9110 §12.5.1 says: weights count, q=0 excludes, the most
/// specific range wins, and 406 when nothing offered is acceptable.
@Suite("Accept with weights")
struct ContentNegotiationTests {
    @Test(arguments: [
        (nil, FetchFormat.text),
        ("*/*", .text),
        ("text/event-stream", .sse),
        ("application/x-ndjson", .ndjson),
        ("text/event-stream;q=0, */*", .text),
        ("application/x-ndjson;q=0.5, text/plain", .text),
        ("text/plain;q=0.2, application/x-ndjson;q=0.9", .ndjson),
        ("text/event-stream, */*", .sse),
        ("text/*;q=0.5, text/event-stream;q=0.8", .sse),
        ("TEXT/EVENT-STREAM ; Q=1", .sse),
        ("text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2", .text),
        ("application/json;q=1, text/plain;q=0.1", .text),
    ] as [(String?, FetchFormat)])
    func weightsChooseTheFormat(accept: String?, expected: FetchFormat) throws {
        #expect(try FetchFormat.choose(query: nil, accept: accept) == expected)
    }

    @Test(arguments: ["application/json", "text/event-stream;q=0, text/plain;q=0, application/x-ndjson;q=0", "*/*;q=0", "image/*"])
    func nothingAcceptableIs406(accept: String) {
        #expect(throws: GatewayError.self) { try FetchFormat.choose(query: nil, accept: accept) }
        do {
            _ = try FetchFormat.choose(query: nil, accept: accept)
        } catch {
            #expect(error.status.code == 406)
            #expect(error.message.contains("text/event-stream"))
        }
    }

    @Test func aBadWeightIsNamed() {
        do {
            _ = try FetchFormat.choose(query: nil, accept: "text/plain;q=high")
            Issue.record("q=high accepted")
        } catch {
            #expect(error.status.code == 400)
            #expect(error.message.contains("q=high"))
        }
    }

    @Test func formatOverridesAcceptAndA406ComesOverHTTP() throws {
        #expect(try FetchFormat.choose(query: "ndjson", accept: "application/json") == .ndjson)
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let refused = CurlClient().request("HEAD", "\(gateway.url)/api/fetch?targets=1234", headers: ["Accept: application/json"])
        #expect(refused.status == 406)
        let chosen = CurlClient().request("HEAD", "\(gateway.url)/api/fetch?targets=1234", headers: ["Accept: text/event-stream;q=0, */*"])
        #expect(chosen.status == 200)
        #expect(chosen.header("Content-Type") == "text/plain; charset=utf-8")
    }
}
