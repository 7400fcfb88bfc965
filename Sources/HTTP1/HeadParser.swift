#if canImport(Glibc)
import Glibc
#endif

/// Parses one complete header section (request line and fields, CRLF-separated, without the final empty line)
/// and works out the request's framing and connection semantics.
enum HeadParser {
    /// `head` is the request line and fields, without the empty line that ends them.
    /// `spare`: the buffer of an earlier head, refilled for this one when nothing else holds it; on return, the
    /// buffer this head uses.
    static func parse(_ head: UnsafeBufferPointer<UInt8>, limits: HTTPLimits, spare: inout HeadBuffer?) throws(HTTPParseError) -> HTTPRequestHead {
        let fieldCount = countLineFeeds(head)
        if fieldCount > limits.maxHeaderCount {
            throw HTTPParseError(.headerFieldsTooLarge, "more than \(limits.maxHeaderCount) header fields")
        }
        var lines = LineIterator(bytes: head)
        guard let requestLine = lines.next() else { throw .bad("empty request") }
        let line = try parseRequestLine(head, requestLine)
        let version = line.version
        let storage: HeadBuffer
        if spare != nil, isKnownUniquelyReferenced(&spare!), spare.unsafelyUnwrapped.refill(copying: head, fieldCapacity: fieldCount) {
            storage = spare.unsafelyUnwrapped
        } else {
            storage = HeadBuffer.make(copying: head, fieldCapacity: fieldCount)
            spare = storage
        }

        var hosts = 0
        var contentLength: Int?
        var transferCodings: [String] = []
        var sawTransferEncoding = false
        var connectionClose = false
        var connectionKeepAlive = false
        var expectsContinue = false
        while let range = lines.next() {
            let span = try field(head, range)
            storage.append(span)
            let name = slice(head, span.nameStart, span.nameEnd)
            let value = slice(head, span.valueStart, span.valueEnd)
            switch name.count {
            case 4 where equalsLowercase(name, "host"):
                hosts += 1
                guard ByteClass.host.containsAll(value) else { throw .bad("invalid Host") }
            case 14 where equalsLowercase(name, "content-length"):
                try forEachListElement(value) { (element) throws(HTTPParseError) in
                    let length = try parseContentLength(trimmed(element))
                    if let contentLength, contentLength != length { throw .bad("conflicting Content-Length values") }
                    contentLength = length
                }
            case 17 where equalsLowercase(name, "transfer-encoding"):
                sawTransferEncoding = true
                try forEachListElement(value) { (element) throws(HTTPParseError) in
                    let coding = trimmed(element)
                    guard !coding.isEmpty, coding.allSatisfy({ ByteClass.token.contains($0) }) else {
                        throw .bad("invalid Transfer-Encoding")
                    }
                    transferCodings.append(String(decoding: coding, as: UTF8.self).lowercased())
                }
            case 10 where equalsLowercase(name, "connection"):
                forEachListElement(value) { element in
                    let option = trimmed(element)
                    if equalsLowercase(option, "close") { connectionClose = true }
                    if equalsLowercase(option, "keep-alive") { connectionKeepAlive = true }
                }
            case 6 where equalsLowercase(name, "expect"):
                guard equalsLowercase(trimmed(value[...]), "100-continue") else {
                    throw HTTPParseError(.expectationFailed, "only Expect: 100-continue is supported")
                }
                // HTTP/1.0 clients do not know 100 Continue (RFC 9110 §10.1.1): ignore it for them.
                expectsContinue = version == .http1_1
            default:
                break
            }
        }

        if version == .http1_1 {
            guard hosts == 1 else { throw .bad(hosts == 0 ? "missing Host header" : "more than one Host header") }
        } else if hosts > 1 {
            throw .bad("more than one Host header")
        }

        var framing = HTTPBodyFraming.none
        if sawTransferEncoding {
            guard contentLength == nil else { throw .bad("both Content-Length and Transfer-Encoding") }
            guard version == .http1_1 else { throw .bad("Transfer-Encoding in an HTTP/1.0 request") }
            guard transferCodings.last == "chunked" else {
                let unknown = transferCodings.first { !knownCodings.contains($0) }
                throw unknown != nil
                    ? HTTPParseError(.notImplemented, "unknown transfer coding '\(unknown!)'")
                    : .bad("the final transfer coding must be chunked")
            }
            guard transferCodings.filter({ $0 == "chunked" }).count == 1 else { throw .bad("chunked applied more than once") }
            if let other = transferCodings.first(where: { $0 != "chunked" }) {
                throw HTTPParseError(.notImplemented, "transfer coding '\(other)' is not supported")
            }
            framing = .chunked
        } else if let contentLength {
            framing = .length(contentLength)
        }

        let keepAlive = version == .http1_1 ? !connectionClose : (connectionKeepAlive && !connectionClose)
        let (path, queryStart) = try splitTarget(head, line.target, method: line.method)
        return HTTPRequestHead(storage: HeadStorage(storage), method: line.method, path: path,
                               target: (Int32(line.target.lowerBound), Int32(line.target.upperBound)), queryStart: queryStart,
                               version: version, keepAlive: keepAlive,
                               expectsContinue: expectsContinue && framing != .none, framing: framing,
                               isAbsoluteForm: head[line.target.lowerBound] != UInt8(ascii: "/") && path != "*")
    }

    /// Calls `body` with each comma-separated element of a field value, empty ones included, untrimmed: `split`
    /// without the array it allocates (every `Connection: close` request has such a list).
    @inline(__always)
    private static func forEachListElement<E: Error>(_ value: UnsafeBufferPointer<UInt8>,
                                                     _ body: (Slice<UnsafeBufferPointer<UInt8>>) throws(E) -> Void) throws(E) {
        var elementStart = 0
        for index in 0...value.count where index == value.count || value[index] == UInt8(ascii: ",") {
            try body(value[elementStart..<index])
            elementStart = index + 1
        }
    }

    /// Where the run of `set`'s bytes starting at `range`'s start ends.
    @inline(__always)
    private static func span(_ head: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, of set: ByteSet) -> Int {
        var index = range.lowerBound
        while index < range.upperBound && set.contains(head[index]) { index += 1 }
        return index
    }

    /// The first `byte` in `range`, for error messages that say what went wrong.
    private static func find(_ byte: UInt8, _ head: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int? {
        range.first { head[$0] == byte }
    }

    /// How many LFs the head holds: one per field line.
    private static func countLineFeeds(_ head: UnsafeBufferPointer<UInt8>) -> Int {
        guard let base = head.baseAddress else { return 0 }
        var count = 0
        var position = base
        let end = base + head.count
        while position < end, let found = memchr(position, Int32(ByteClass.lf), end - position) {
            count += 1
            position = UnsafePointer(found.assumingMemoryBound(to: UInt8.self)) + 1
        }
        return count
    }

    @inline(__always)
    private static func slice(_ head: UnsafeBufferPointer<UInt8>, _ start: Int32, _ end: Int32) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: head[Int(start)..<Int(end)])
    }

    private static let knownCodings: Set<String> = ["chunked", "gzip", "x-gzip", "deflate", "compress", "x-compress"]

    /// `name: value` with OWS trimmed; no whitespace before the colon, no obs-fold, no control characters. One
    /// pass: the name is checked as far as the colon, the value as it is trimmed.
    static func field(_ head: UnsafeBufferPointer<UInt8>, _ line: Range<Int>) throws(HTTPParseError) -> FieldSpan {
        guard !line.isEmpty else { throw .bad("empty header line") }
        let first = head[line.lowerBound]
        guard first != ByteClass.space && first != ByteClass.tab else { throw .bad("obsolete line folding (obs-fold) is not allowed") }
        let colon = span(head, line.lowerBound..<line.upperBound, of: ByteClass.token)
        guard colon < line.upperBound, head[colon] == ByteClass.colon else {
            guard let index = find(ByteClass.colon, head, colon..<line.upperBound) else { throw .bad("header line without a colon") }
            let last = head[index - 1]
            throw .bad(last == ByteClass.space || last == ByteClass.tab ? "whitespace between a header name and its colon" : "invalid header name")
        }
        guard colon > line.lowerBound else { throw .bad("empty header name") }
        var valueStart = colon + 1
        while valueStart < line.upperBound && (head[valueStart] == ByteClass.space || head[valueStart] == ByteClass.tab) { valueStart += 1 }
        var valueEnd = valueStart
        let fieldValue = ByteClass.fieldValue
        var index = valueStart
        while index < line.upperBound {
            let byte = head[index]
            guard fieldValue.contains(byte) else { throw .bad("control character in a header value") }
            index += 1
            if byte != ByteClass.space && byte != ByteClass.tab { valueEnd = index }
        }
        return FieldSpan(nameStart: Int32(line.lowerBound), nameEnd: Int32(colon), valueStart: Int32(valueStart), valueEnd: Int32(valueEnd))
    }

    /// The same checks for a trailer line, which is validated and dropped.
    static func checkField(_ line: ArraySlice<UInt8>) throws(HTTPParseError) {
        try line.withUnsafeBufferPointer { (buffer) throws(HTTPParseError) in
            _ = try field(buffer, 0..<buffer.count)
        }
    }

    private struct RequestLine {
        let method: String
        let target: Range<Int>
        let version: HTTPVersion
    }

    private static func parseRequestLine(_ head: UnsafeBufferPointer<UInt8>, _ line: Range<Int>) throws(HTTPParseError) -> RequestLine {
        let firstSpace = span(head, line, of: ByteClass.token)
        guard firstSpace < line.upperBound, head[firstSpace] == ByteClass.space else {
            throw .bad(find(ByteClass.space, head, firstSpace..<line.upperBound) != nil ? "invalid method" : "malformed request line")
        }
        guard firstSpace > line.lowerBound else { throw .bad("invalid method") }
        let targetClass = ByteClass.target
        var secondSpace = firstSpace + 1
        var percentSeen = false
        while secondSpace < line.upperBound && targetClass.contains(head[secondSpace]) {
            if head[secondSpace] == UInt8(ascii: "%") { percentSeen = true }
            secondSpace += 1
        }
        guard secondSpace < line.upperBound, head[secondSpace] == ByteClass.space else {
            throw .bad(find(ByteClass.space, head, secondSpace..<line.upperBound) != nil ? "invalid request target" : "malformed request line")
        }
        guard secondSpace > firstSpace + 1 else { throw .bad("invalid request target") }
        let target = UnsafeBufferPointer(rebasing: head[(firstSpace + 1)..<secondSpace])
        if percentSeen { try checkPercentEncoding(target) }
        let version = try parseVersion(UnsafeBufferPointer(rebasing: head[(secondSpace + 1)..<line.upperBound]))
        let method = UnsafeBufferPointer(rebasing: head[line.lowerBound..<firstSpace])
        return RequestLine(method: methodString(method), target: (firstSpace + 1)..<secondSpace, version: version)
    }

    /// The common methods as literals (no decoding or validation); others decoded.
    private static func methodString(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        switch bytes.count {
        case 3 where bytes[0] == UInt8(ascii: "G") && bytes[1] == UInt8(ascii: "E") && bytes[2] == UInt8(ascii: "T"): return "GET"
        case 4 where bytes[0] == UInt8(ascii: "P") && bytes[1] == UInt8(ascii: "O") && bytes[2] == UInt8(ascii: "S") && bytes[3] == UInt8(ascii: "T"): return "POST"
        case 4 where bytes[0] == UInt8(ascii: "H") && bytes[1] == UInt8(ascii: "E") && bytes[2] == UInt8(ascii: "A") && bytes[3] == UInt8(ascii: "D"): return "HEAD"
        default: return String(decoding: bytes, as: UTF8.self)
        }
    }

    private static func parseVersion(_ bytes: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> HTTPVersion {
        guard bytes.count == 8, bytes[0] == UInt8(ascii: "H"), bytes[1] == UInt8(ascii: "T"), bytes[2] == UInt8(ascii: "T"),
              bytes[3] == UInt8(ascii: "P"), bytes[4] == UInt8(ascii: "/"), bytes[6] == UInt8(ascii: "."),
              let major = digit(bytes[5]), let minor = digit(bytes[7]) else {
            throw .bad("malformed HTTP version")
        }
        // A later 1.x is answered as 1.1 (RFC 9110 §2.5: a higher minor version is processed as the highest known).
        guard major == 1 else { throw HTTPParseError(.versionNotSupported, "only HTTP/1.x is supported") }
        return minor == 0 ? .http1_0 : .http1_1
    }

    private static func digit(_ byte: UInt8) -> Int? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
    }

    private static func checkPercentEncoding(_ target: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) {
        var index = 0
        while index < target.count {
            if target[index] == UInt8(ascii: "%") {
                guard index + 2 < target.count, ByteClass.hexValue(target[index + 1]) != nil,
                      ByteClass.hexValue(target[index + 2]) != nil else { throw .bad("invalid percent-encoding in the target") }
                index += 3
            } else {
                index += 1
            }
        }
    }

    private static func parseContentLength(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) throws(HTTPParseError) -> Int {
        guard !bytes.isEmpty, bytes.count <= 18 else { throw .bad("invalid Content-Length") }
        var value = 0
        for byte in bytes {
            guard let d = digit(byte) else { throw .bad("invalid Content-Length") }
            value = value * 10 + d
        }
        return value
    }

    /// Origin-form (`/path?query`), absolute-form (`http://host/path?query`), or `*` for OPTIONS; worked out on the
    /// target's bytes (this runs for every request), making only the path string. Returns the path and where the
    /// query starts in the head (-1: no query).
    private static func splitTarget(_ head: UnsafeBufferPointer<UInt8>, _ target: Range<Int>, method: String) throws(HTTPParseError) -> (String, Int32) {
        var rest = target
        if rest.count == 1 && head[rest.lowerBound] == UInt8(ascii: "*") {
            guard method == "OPTIONS" else { throw .bad("asterisk-form target is only for OPTIONS") }
            return ("*", -1)
        }
        if head[rest.lowerBound] != UInt8(ascii: "/") {
            let bytes = UnsafeBufferPointer(rebasing: head[rest])
            let schemeLength = startsWithLowercase(bytes, "http://") ? 7 : startsWithLowercase(bytes, "https://") ? 8 : 0
            guard schemeLength > 0 else { throw .bad("invalid request target") }
            rest = (rest.lowerBound + schemeLength)..<rest.upperBound
            var authorityEnd = rest.lowerBound
            while authorityEnd < rest.upperBound && head[authorityEnd] != UInt8(ascii: "/") && head[authorityEnd] != UInt8(ascii: "?") {
                guard head[authorityEnd] != UInt8(ascii: "@") else { throw .bad("invalid authority in the target") }
                authorityEnd += 1
            }
            guard authorityEnd > rest.lowerBound else { throw .bad("invalid authority in the target") }
            rest = authorityEnd..<rest.upperBound
            if rest.isEmpty || head[rest.lowerBound] != UInt8(ascii: "/") {
                // `http://host?q` has an empty path: it means `/`.
                return ("/", rest.isEmpty ? -1 : Int32(rest.lowerBound + 1))
            }
        }
        var question = rest.lowerBound
        while question < rest.upperBound && head[question] != UInt8(ascii: "?") { question += 1 }
        let path = String(decoding: UnsafeBufferPointer(rebasing: head[rest.lowerBound..<question]), as: UTF8.self)
        return (path, question < rest.upperBound ? Int32(question + 1) : -1)
    }

    private static func startsWithLowercase(_ bytes: UnsafeBufferPointer<UInt8>, _ prefix: StaticString) -> Bool {
        bytes.count >= prefix.utf8CodeUnitCount && equalsLowercase(bytes.prefix(prefix.utf8CodeUnitCount), prefix)
    }

    static func trimmed<C: BidirectionalCollection>(_ bytes: C) -> C.SubSequence where C.Element == UInt8 {
        var slice = bytes[...]
        while let first = slice.first, first == ByteClass.space || first == ByteClass.tab { slice = slice.dropFirst() }
        while let last = slice.last, last == ByteClass.space || last == ByteClass.tab { slice = slice.dropLast() }
        return slice
    }
}

/// Splits a head (already checked: every LF follows a CR, no CR stands alone) into its lines, as ranges.
struct LineIterator: IteratorProtocol {
    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    mutating func next() -> Range<Int>? {
        guard position < bytes.count, let base = bytes.baseAddress else { return nil }
        let lineStart = position
        guard let found = memchr(base + position, Int32(ByteClass.lf), bytes.count - position) else {
            position = bytes.count
            return lineStart..<bytes.count
        }
        let lf = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
        position = lf + 1
        return lineStart..<(lf - 1)
    }
}
