@testable import HTTP1
import Testing

/// Feeds `request` to a fresh parser in pieces of `split` bytes (0: all at once) and collects what comes out.
private func parse(_ request: String, split: Int, limits: HTTPLimits = HTTPLimits()) -> (events: [HTTPParserEvent], error: HTTPParseError?) {
    var parser = HTTPRequestParser(limits: limits)
    let bytes = Array(request.utf8)
    var events: [HTTPParserEvent] = []
    var index = 0
    repeat {
        let end = split == 0 ? bytes.count : min(bytes.count, index + split)
        parser.append(Array(bytes[index..<end]))
        index = end
        do {
            while let event = try parser.next() { events.append(event) }
        } catch {
            return (events, error)
        }
    } while index < bytes.count
    return (merged(events), nil)
}

/// Body parts merged, so results of different splits compare equal.
private func merged(_ events: [HTTPParserEvent]) -> [HTTPParserEvent] {
    var out: [HTTPParserEvent] = []
    for event in events {
        if case .body(let more) = event, case .body(let earlier)? = out.last {
            out[out.count - 1] = .body(earlier + more)
        } else {
            out.append(event)
        }
    }
    return out
}

/// Every split gives the same result as the whole.
private func parseEverySplit(_ request: String, limits: HTTPLimits = HTTPLimits()) -> (events: [HTTPParserEvent], error: HTTPParseError?) {
    let whole = parse(request, split: 0, limits: limits)
    for split in [1, 2, 3, 7] {
        let pieces = parse(request, split: split, limits: limits)
        #expect(merged(pieces.events) == merged(whole.events), "split \(split) of \(request.debugDescription)")
        #expect(pieces.error == whole.error, "split \(split) of \(request.debugDescription)")
    }
    return (merged(whole.events), whole.error)
}

private func heads(_ events: [HTTPParserEvent]) -> [HTTPRequestHead] {
    events.compactMap { if case .head(let head) = $0 { return head } else { return nil } }
}

private func bodies(_ events: [HTTPParserEvent]) -> [String] {
    events.compactMap { if case .body(let bytes) = $0 { return String(decoding: bytes, as: UTF8.self) } else { return nil } }
}

@Suite("Request parser: every case whole and byte by byte")
struct ParserTests {
    @Test func simpleGet() throws {
        let result = parseEverySplit("GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\n\r\n")
        #expect(result.error == nil)
        let head = try #require(heads(result.events).first)
        #expect(head.method == "GET")
        #expect(head.path == "/a/b")
        #expect(head.query == "x=1&y=%20")
        #expect(head.version == .http1_1)
        #expect(head.headers["host"] == "example")
        #expect(head.keepAlive)
        #expect(result.events.last == .end)
    }

    @Test func aHeadsBufferIsRefilledOnlyWhenNothingElseHoldsIt() throws {
        var parser = HTTPRequestParser()
        func next(_ request: String) throws -> HTTPRequestHead {
            parser.append(Array(request.utf8))
            guard case .head(let head)? = try parser.next(), case .end? = try parser.next() else {
                throw HTTPParseError(.badRequest, "no head")
            }
            return head
        }
        let first = try next("GET /first?q=1 HTTP/1.1\r\nHost: a\r\nX-Mark: one\r\n\r\n")
        let firstBuffer = first.storage.bufferIdentity
        // `first` is still held: the second head gets a buffer of its own and `first` reads as before.
        var second: HTTPRequestHead? = try next("GET /second HTTP/1.1\r\nHost: b\r\nX-Mark: two, a longer value\r\nX-Other: 2\r\n\r\n")
        #expect(second?.storage.bufferIdentity != firstBuffer)
        #expect(first.headers["X-Mark"] == "one" && first.target == "/first?q=1" && first.headers.count == 2)
        #expect(second?.headers["X-Mark"] == "two, a longer value" && second?.headers["X-Other"] == "2")
        let secondBuffer = try #require(second?.storage.bufferIdentity)
        // Once the last head is let go, the next one is written into its buffer.
        second = nil
        let fourth = try next("POST /fourth HTTP/1.1\r\nHost: c\r\nContent-Length: 0\r\n\r\n")
        #expect(fourth.storage.bufferIdentity == secondBuffer)
        #expect(fourth.method == "POST" && fourth.path == "/fourth" && fourth.headers["Host"] == "c" && fourth.headers["X-Mark"] == nil)
        // A head larger than the buffer gets a new one.
        let large = try next("GET / HTTP/1.1\r\nHost: d\r\nX-Big: \(String(repeating: "b", count: 2000))\r\n\r\n")
        #expect(large.storage.bufferIdentity != secondBuffer)
        #expect(large.headers["X-Big"]?.count == 2000)
        withExtendedLifetime(first) {}
    }

    @Test func contentLengthBody() {
        let result = parseEverySplit("POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world")
        #expect(result.error == nil)
        #expect(bodies(result.events) == ["hello world"])
        #expect(result.events.last == .end)
    }

    @Test func chunkedBodyWithExtensionsAndTrailers() {
        let request = "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            + "5;name=value;flag\r\nhello\r\n6;q=\"a b\"\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
        let result = parseEverySplit(request)
        #expect(result.error == nil)
        #expect(bodies(result.events) == ["hello world"])
        #expect(result.events.last == .end)
    }

    @Test func pipelinedRequestsComeOutInOrder() {
        let request = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc\r\nGET /3 HTTP/1.0\r\n\r\n"
        let result = parseEverySplit(request)
        #expect(result.error == nil)
        #expect(heads(result.events).map(\.path) == ["/1", "/2", "/3"])
        #expect(heads(result.events).map(\.keepAlive) == [true, true, false])
        #expect(bodies(result.events) == ["abc"])
    }

    @Test func absoluteFormIsReducedToItsPath() throws {
        let result = parseEverySplit("GET http://example.com:8080/x/y?z=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
        let head = try #require(heads(result.events).first)
        #expect(head.path == "/x/y")
        #expect(head.query == "z=1")
        #expect(head.absoluteFormAuthority == "example.com:8080")
    }

    @Test(arguments: [("GET / HTTP/1.1", nil), ("OPTIONS * HTTP/1.1", nil), ("GET /a:b//c HTTP/1.1", nil),
                      ("GET HTTPS://[::1]:9?q HTTP/1.1", "[::1]:9"), ("GET http://h HTTP/1.1", "h")])
    func onlyAnAbsoluteFormTargetHasAnAuthority(line: String, authority: String?) throws {
        let head = try #require(heads(parseEverySplit("\(line)\r\nHost: x\r\n\r\n").events).first)
        #expect(head.absoluteFormAuthority == authority, "\(line)")
    }

    @Test func http10KeepAliveAndConnectionClose() {
        #expect(heads(parseEverySplit("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").events).first?.keepAlive == true)
        #expect(heads(parseEverySplit("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").events).first?.keepAlive == false)
    }

    @Test func expectContinueIsSeenOnlyWithABody() {
        let withBody = parseEverySplit("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")
        #expect(heads(withBody.events).first?.expectsContinue == true)
        let http10 = parseEverySplit("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")
        #expect(heads(http10.events).first?.expectsContinue == false)
    }

    @Test func leadingEmptyLinesAreIgnored() {
        #expect(heads(parseEverySplit("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n").events).count == 1)
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: foo\r\n\r\n", 501),
        ("GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n folded: x\r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/1.1\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\n\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400),
        ("GET /\u{7}x HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nX: a\u{0}b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("GET / HTTP/3.0\r\nHost: h\r\n\r\n", 505),
        ("GET / HTTP/1.x\r\nHost: h\r\n\r\n", 400),
        ("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n", 417),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", 400),
    ])
    func invalidRequestsAreRefusedWithTheRightStatus(request: String, status: Int) {
        let result = parseEverySplit(request)
        #expect(result.error?.status.code == status, "\(request.debugDescription) gave \(String(describing: result.error))")
    }

    @Test func limitsGive414And431And413() {
        var limits = HTTPLimits()
        limits.maxRequestLineBytes = 100
        limits.maxHeaderBytes = 300
        limits.maxHeaderCount = 5
        limits.maxBodyBytes = 10
        #expect(parseEverySplit("GET /" + String(repeating: "a", count: 200) + " HTTP/1.1\r\n\r\n", limits: limits).error?.status == .uriTooLong)
        #expect(parseEverySplit("GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "a", count: 400) + "\r\n\r\n", limits: limits).error?.status == .headerFieldsTooLarge)
        let many = (0..<6).map { "X-\($0): v\r\n" }.joined()
        #expect(parseEverySplit("GET / HTTP/1.1\r\nHost: h\r\n\(many)\r\n", limits: limits).error?.status == .headerFieldsTooLarge)
        #expect(parseEverySplit("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", limits: limits).error?.status == .contentTooLarge)
        #expect(parseEverySplit("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nabcdef\r\n0\r\n\r\n", limits: limits).error?.status == .contentTooLarge)
    }

    /// RFC 9110 §2.5: a higher minor version of HTTP/1 is processed as the highest this server knows, 1.1.
    @Test func aLaterMinorVersionIsProcessedAs11() throws {
        for version in ["1.2", "1.9"] {
            let result = parseEverySplit("GET / HTTP/\(version)\r\nHost: h\r\n\r\n")
            #expect(result.error == nil, "HTTP/\(version): \(String(describing: result.error))")
            #expect(heads(result.events).first?.version == .http1_1)
        }
        #expect(parseEverySplit("GET / HTTP/2.0\r\nHost: h\r\n\r\n").error?.status == .versionNotSupported)
    }

    /// Host and 100 more small fields are an ordinary request (curl with many -H, a proxy's additions); the limit
    /// is 256 by default.
    @Test func aHundredFieldsAreWellWithinTheDefaultLimit() throws {
        let fields = (0..<100).map { "X-\($0): v\r\n" }.joined()
        #expect(parse("GET / HTTP/1.1\r\nHost: h\r\n\(fields)\r\n", split: 0).error == nil)
        #expect(HTTPLimits().maxHeaderCount >= 256)
        let tooMany = (0..<256).map { "X-\($0): v\r\n" }.joined()
        #expect(parse("GET / HTTP/1.1\r\nHost: h\r\n\(tooMany)\r\n", split: 0).error?.status == .headerFieldsTooLarge)
    }

    /// RFC 9112 §7.1.1: whitespace may come before a chunk extension's ';' (but not stand alone after the size).
    @Test func whitespaceBeforeAChunkExtensionIsAllowed() {
        for line in ["5 ;a=b", "5\t;a", "5  ; a = \"q\" ;b"] {
            let result = parseEverySplit("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\(line)\r\nhello\r\n0\r\n\r\n")
            #expect(result.error == nil, "\(line.debugDescription): \(String(describing: result.error))")
            #expect(bodies(result.events) == ["hello"])
        }
        for line in ["5 ", "5 \t", "5 x", "5 ;"] {
            let result = parseEverySplit("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\(line)\r\nhello\r\n0\r\n\r\n")
            #expect(result.error?.status == .badRequest, "\(line.debugDescription) was accepted")
        }
    }

    @Test func aFailedParserStaysFailed() {
        var parser = HTTPRequestParser()
        parser.append(Array("GET / HTTP/1.1\nHost: h\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.self) { _ = try parser.next() }
        parser.append(Array("GET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.self) { _ = try parser.next() }
    }

    @Test func aTrickledHeadIsNotRescannedQuadratically() {
        // 30 KB arriving a byte at a time must parse in well under a second even in a debug build.
        var parser = HTTPRequestParser()
        let head = "GET / HTTP/1.1\r\nHost: h\r\n" + (0..<600).map { "X-Field-\($0): \(String(repeating: "v", count: 30))\r\n" }.joined()
        var limits = HTTPLimits()
        limits.maxHeaderCount = 1000
        parser = HTTPRequestParser(limits: limits)
        let start = ContinuousClock.now
        for byte in head.utf8 {
            parser.append([byte])
            #expect((try? parser.next()) == nil)
        }
        parser.append(Array("\r\n".utf8))
        let event = try? parser.next()
        #expect(event.map { if case .head = $0 { return true } else { return false } } == true)
        #expect(ContinuousClock.now - start < .seconds(5))
    }
}
