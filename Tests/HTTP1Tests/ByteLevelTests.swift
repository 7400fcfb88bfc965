@testable import HTTP1
import Testing

@Suite("Byte classes, header views and the output cursor")
struct ByteLevelTests {
    /// The bit maps are hand-made constants: check every byte against the RFC definitions written out here.
    @Test func byteClassesMatchTheirDefinitions() {
        let alphanumeric = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".utf8)
        let definitions: [(String, ByteSet, (UInt8) -> Bool)] = [
            ("token", ByteClass.token, { alphanumeric.contains($0) || "!#$%&'*+-.^_`|~".utf8.contains($0) }),
            ("target", ByteClass.target, { alphanumeric.contains($0) || "-._~:/?[]@!$&'()*+,;=%".utf8.contains($0) }),
            ("fieldValue", ByteClass.fieldValue, { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }),
            ("host", ByteClass.host, { alphanumeric.contains($0) || "-._~!$&'()*+,;=:[]%".utf8.contains($0) }),
        ]
        for (name, set, definition) in definitions {
            let wrong = (0...255).map(UInt8.init).filter { set.contains($0) != definition($0) }
            #expect(wrong.isEmpty, "\(name) disagrees on bytes \(wrong)")
        }
    }

    @Test func requestHeadersAreReadFromTheHeadBytes() throws {
        var parser = HTTPRequestParser()
        parser.append(Array("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Two: 1\r\nx-two:  2 \r\nAccept: */*\r\n\r\n".utf8))
        guard case .head(let head) = try parser.next() else {
            Issue.record("no head")
            return
        }
        #expect(head.target == "/a?b=1")
        #expect(head.query == "b=1")
        #expect(head.headers.count == 4)
        #expect(head.headers["x-TWO"] == "1")
        #expect(head.headers.values("X-Two") == ["1", "2"])
        #expect(head.headers.contains("accept"))
        #expect(!head.headers.contains("Accept-Encoding"))
        #expect(head.headers.map(\.name) == ["Host", "X-Two", "x-two", "Accept"])
        #expect(head.headers.withFirstValue("host") { $0.map { String(decoding: $0, as: UTF8.self) } } == "x")
        #expect(head.headers.withFirstValue("origin") { $0 == nil })
    }

    @Test func responseHeadersAreEncodedOnceAndCannotSmuggleLines() {
        var headers = HTTPHeaders([("Content-Type", "text/plain"), ("X-Note", "a\r\nSet-Cookie: evil=1")])
        #expect(String(decoding: headers.encoded, as: UTF8.self) == "Content-Type: text/plain\r\nX-Note: aSet-Cookie: evil=1\r\n")
        #expect(!headers.setsConnection)
        headers.add("connection", "Keep-Alive, Close")
        #expect(headers.setsConnection && headers.asksToClose)
        #expect(headers["CONTENT-TYPE"] == "text/plain")
        #expect(headers.values("x-note") == ["a\r\nSet-Cookie: evil=1"])  // the field keeps what was given
        #expect(String(decoding: HTTPStatus.notFound.statusLine, as: UTF8.self) == "HTTP/1.1 404 Not Found\r\n")
        #expect(String(decoding: HTTPStatus(299, "Odd\r\nX: y").statusLine, as: UTF8.self) == "HTTP/1.1 299 OddX: y\r\n")
    }
}
