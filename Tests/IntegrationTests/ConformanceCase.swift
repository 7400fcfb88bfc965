import Foundation
import TestSupport

/// One case of the HTTP/1.1 conformance probe (Resources/http1-conformance/cases.json, a copy of the shared
/// `h1probe` data): the request's bytes and the verdict they must get. `grade` is `h1probe.py`'s `grade()`,
/// rule for rule, so a case passes here exactly when it passes the probe.
struct ConformanceCase: Decodable, Sendable, CustomStringConvertible {
    let id: String
    let category: String
    let expect: String
    let request: String
    let pre: Int?
    let maxResponses: Int?
    let minResponses: Int?
    let statuses: [Int]?
    let close: String?
    let prefer: String?
    let methods: [String]?

    enum CodingKeys: String, CodingKey {
        case id, category, expect, request, pre, statuses, close, prefer, methods
        case maxResponses = "max_responses"
        case minResponses = "min_responses"
    }

    var description: String { id }

    /// Statuses that mean "refused at the protocol level".
    static let parseRejections: Set<Int> = [400, 408, 411, 413, 414, 417, 431, 501, 505]

    /// The cases committed with the tests, so a clone needs nothing beside itself.
    static func load() throws -> [ConformanceCase] {
        struct File: Decodable { let cases: [ConformanceCase] }
        let path = "\(projectRoot)/Tests/IntegrationTests/Resources/http1-conformance/cases.json"
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: path))).cases
    }

    /// The probe's baseline: the server answers a plain GET and a plain POST (any 2xx, 404 or 405).
    static let baseline = [
        ConformanceCase(id: "baseline-get", expect: "accept", request: "GET @@PATH@@ HTTP/1.1\r\nHost: @@HOST@@\r\n\r\n"),
        ConformanceCase(id: "baseline-post", expect: "accept",
                        request: "POST @@POST@@ HTTP/1.1\r\nHost: @@HOST@@\r\nContent-Length: 5\r\n\r\nhello"),
    ]

    init(id: String, expect: String, request: String) {
        (self.id, category, self.expect, self.request) = (id, "baseline", expect, request)
        (pre, maxResponses, minResponses, statuses, close, prefer, methods) = (nil, nil, nil, nil, nil, nil, nil)
    }

    var leadingRequests: Int { pre ?? 0 }
    var mostResponses: Int { maxResponses ?? leadingRequests + 1 }
    var fewestResponses: Int { minResponses ?? leadingRequests + 1 }
    var wantsClose: Bool { close == "must" || close == "should" }

    /// The bytes to send: the probe's templates filled in (Host `localhost`, GET and POST path `/`), each
    /// character one latin-1 byte.
    var bytes: [UInt8] {
        var text = request.replacingOccurrences(of: "@@HOST@@", with: "localhost")
            .replacingOccurrences(of: "@@PATH@@", with: "/")
            .replacingOccurrences(of: "@@POST@@", with: "/")
        while let match = text.firstMatch(of: #/@@HDRS\*(\d+)@@/#) {
            let fields = (0..<Int(match.output.1)!).map { "X-Filler-\($0): vvvvvvvv\r\n" }.joined()
            text.replaceSubrange(match.range, with: fields)
        }
        while let match = text.firstMatch(of: #/@@(.)\*(\d+)@@/#) {
            text.replaceSubrange(match.range, with: String(repeating: String(match.output.1), count: Int(match.output.2)!))
        }
        return text.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) }
    }

    enum Verdict: String { case pass = "PASS", warn = "WARN", fail = "FAIL" }

    /// The probe's verdict on what came back; the probe's `--strict` (the project's bar) fails on WARN too.
    func grade(_ exchange: ProbeExchange) -> (verdict: Verdict, detail: String) {
        let (finals, leftover) = ProbeResponses.parse(exchange.data, methods: methods ?? [])
        let statuses = finals.map(\.status)
        let count = finals.count
        let closed = exchange.closed
        if count > mostResponses {
            return (.fail, "\(count) responses \(statuses) but at most \(mostResponses) allowed: the server parsed extra (smuggled) requests")
        }
        for (index, response) in finals.prefix(leadingRequests).enumerated()
        where Self.parseRejections.contains(response.status) || response.status >= 500 {
            return (.fail, "valid leading request #\(index + 1) answered \(response.status)")
        }
        if count < leadingRequests {
            return (.fail, "only \(count) of \(leadingRequests) leading valid requests answered (closed: \(closed))")
        }
        let target = count > leadingRequests ? finals[leadingRequests] : nil
        let garbage = leftover == .garbage

        func closeCheck(_ message: String) -> (Verdict, String) {
            if close == "must" && !closed { return (.fail, message + "; connection NOT closed (the RFC requires closing)") }
            if close == "should" && !closed { return (.warn, message + "; connection not closed") }
            return (.pass, message + (closed ? "; closed" : ""))
        }

        switch expect {
        case "accept":
            guard let target else { return (.fail, garbage ? "non-HTTP bytes instead of a response" : "no response (closed: \(closed))") }
            if Self.parseRejections.contains(target.status) || target.status >= 500 { return (.fail, "valid request rejected with \(target.status)") }
            if count < fewestResponses { return (.fail, "\(count) responses \(statuses), expected \(fewestResponses)") }
            return closeCheck("accepted with \(target.status)")
        case "respond":
            guard let target else { return (.fail, "no response (closed: \(closed)\(garbage ? ", garbage" : ""))") }
            if target.status >= 500 && target.status != 501 && target.status != 505 { return (.fail, "server error \(target.status)") }
            if count < fewestResponses { return (.fail, "\(count) responses \(statuses), expected \(fewestResponses)") }
            return closeCheck("answered \(target.status)")
        case "reject":
            let wanted = self.statuses ?? [400]
            guard let target else {
                if garbage { return (.warn, "non-HTTP/1.x bytes instead of a \(wanted) response") }
                return (.warn, closed ? "closed without sending \(wanted)" : "no response and the connection left open")
            }
            if wanted.contains(target.status) { return closeCheck("rejected with \(target.status)") }
            if Self.parseRejections.contains(target.status) {
                let (verdict, message) = closeCheck("rejected with \(target.status) (preferred \(wanted))")
                return (verdict == .pass ? .warn : verdict, message)
            }
            return (.fail, "invalid request accepted or answered with \(target.status) (expected \(wanted))")
        case "either":
            guard let target else { return (.pass, "no response (closed: \(closed))") }
            let rejected = Self.parseRejections.contains(target.status)
            if target.status >= 500 && !rejected { return (.fail, "server error \(target.status)") }
            if rejected {
                let (verdict, message) = closeCheck("rejected with \(target.status)")
                if verdict == .pass && prefer == "accept" { return (.warn, message + " (accepting is preferred)") }
                return (verdict, message)
            }
            let message = "accepted with \(target.status)"
            if close != nil && !closed { return closeCheck(message) }
            if prefer == "reject" { return (.warn, message + " (rejecting is preferred by the RFC or upstream)") }
            return (.pass, message)
        case "body_error":
            guard let target else { return (.pass, "no response (closed: \(closed))") }
            if Self.parseRejections.contains(target.status) { return closeCheck("rejected with \(target.status)") }
            if closed { return (.pass, "answered \(target.status) then closed") }
            return (.warn, "answered \(target.status) and kept the connection open after a malformed body")
        default:
            return (.fail, "unknown expectation '\(expect)' in cases.json")
        }
    }
}
