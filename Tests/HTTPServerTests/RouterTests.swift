@testable import HTTPServer
import HTTP1
import Testing

@Suite("Router, query strings and JSON")
struct RouterTests {
    @Test func patternsCaptureDecodedParameters() {
        let router = Router()
        router.get("/api/servers/{id}") { _, _, _ in }
        router.delete("/api/servers/{id}") { _, _, _ in }
        router.get("/healthz") { _, _, _ in }
        router.add("PURGE", "/cache") { _, _, _ in }
        guard case .route(_, let decoded) = router.match(method: "GET", path: "/api/servers/a%20b") else {
            Issue.record("GET /api/servers/a%20b did not match")
            return
        }
        #expect(decoded["id"] == "a b")
        for path in ["/api/servers", "/api/servers/1/extra", "/api/serverz/1", "/api/server/1", "/healthy", "/"] {
            guard case .unmatched = router.match(method: "GET", path: path) else {
                Issue.record("\(path) matched")
                continue
            }
        }
        // Empty segments are ignored, HEAD takes GET routes, unknown methods compare by name.
        guard case .route(2, let none) = router.match(method: "HEAD", path: "//healthz/") else {
            Issue.record("HEAD //healthz/ did not match GET /healthz")
            return
        }
        #expect(none.values.isEmpty)
        guard case .route(3, _) = router.match(method: "PURGE", path: "/cache") else {
            Issue.record("PURGE /cache did not match")
            return
        }
        guard case .methodNotAllowed(let purgeOnly, "/cache") = router.match(method: "BREW", path: "/cache") else {
            Issue.record("BREW /cache should be 405")
            return
        }
        #expect(purgeOnly == ["PURGE"])
        // Patterns, paths and parameters are split by one rule: empty segments do not count anywhere.
        let loose = Router()
        loose.get("/files//{name}/") { _, _, _ in }
        guard case .route(0, let named) = loose.match(method: "GET", path: "//files/a%2Eb//") else {
            Issue.record("a path with doubled slashes did not match")
            return
        }
        #expect(named["name"] == "a.b")
        guard case .route(let index, let found) = router.match(method: "GET", path: "/api/servers/7") else {
            Issue.record("GET /api/servers/7 did not match")
            return
        }
        #expect(router.routes[index].pattern == "/api/servers/{id}")
        #expect(found["id"] == "7")
        guard case .methodNotAllowed(let allowed, _) = router.match(method: "POST", path: "/api/servers/7") else {
            Issue.record("POST /api/servers/7 should be 405")
            return
        }
        #expect(allowed == ["GET", "DELETE"])
        guard case .unmatched = router.match(method: "GET", path: "/nope") else {
            Issue.record("/nope matched")
            return
        }
    }

    @Test func queryStringsArePercentDecoded() {
        let items = QueryString.parse("targets=10000%2C10001&mode=async&q=a+b&empty=&flag")
        #expect(items.map(\.name) == ["targets", "mode", "q", "empty", "flag"])
        #expect(items.map(\.value) == ["10000,10001", "async", "a b", "", ""])
        #expect(QueryString.percentDecode("%zz") == nil)
        #expect(QueryString.percentDecode("%C3%A9") == "é")
    }

    @Test func jsonIsWrittenWithEscapesAndStableNumbers() {
        let value: JSON = ["s": "a\"b\\c\n\u{1}", "n": 3, "d": .double(0.1), "whole": .double(2), "list": [true, .null]]
        #expect(value.text == #"{"s":"a\"b\\c\n\u0001","n":3,"d":0.1,"whole":2,"list":[true,null]}"#)
        #expect(JSON.error("not_found", "no such poem").text == #"{"error":"not_found","message":"no such poem"}"#)
        #expect(JSON.double(10.1263614).text == "10.126361")
    }
}
