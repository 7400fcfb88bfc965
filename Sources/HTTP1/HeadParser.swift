/// Parses one complete header section (request line and fields, CRLF-separated, without the final empty line)
/// and works out the request's framing and connection semantics.
enum HeadParser {
    static func parse(_ head: ArraySlice<UInt8>, limits: HTTPLimits) throws(HTTPParseError) -> HTTPRequestHead {
        var lines = LineIterator(bytes: head)
        guard let requestLine = lines.next() else { throw .bad("empty request") }
        let (method, target, version) = try parseRequestLine(requestLine)

        var headers = HTTPHeaders()
        var hosts = 0
        var contentLength: Int?
        var transferCodings: [String] = []
        var sawTransferEncoding = false
        var connectionClose = false
        var connectionKeepAlive = false
        var expectsContinue = false
        var count = 0
        while let line = lines.next() {
            count += 1
            if count > limits.maxHeaderCount {
                throw HTTPParseError(.headerFieldsTooLarge, "more than \(limits.maxHeaderCount) header fields")
            }
            let (nameBytes, valueBytes) = try field(line)
            let name = String(decoding: nameBytes, as: UTF8.self)
            let value = String(decoding: valueBytes, as: UTF8.self)
            headers.add(name, value)
            if equalsLowercase(nameBytes, "host") {
                hosts += 1
                guard valueBytes.allSatisfy({ ByteClass.host[Int($0)] }) else { throw .bad("invalid Host") }
            } else if equalsLowercase(nameBytes, "content-length") {
                for element in valueBytes.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                    let length = try parseContentLength(trimmed(element))
                    if let contentLength, contentLength != length { throw .bad("conflicting Content-Length values") }
                    contentLength = length
                }
            } else if equalsLowercase(nameBytes, "transfer-encoding") {
                sawTransferEncoding = true
                for element in valueBytes.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                    let coding = trimmed(element)
                    guard !coding.isEmpty, coding.allSatisfy({ ByteClass.token[Int($0)] }) else {
                        throw .bad("invalid Transfer-Encoding")
                    }
                    transferCodings.append(String(decoding: coding, as: UTF8.self).lowercased())
                }
            } else if equalsLowercase(nameBytes, "connection") {
                for element in valueBytes.split(separator: UInt8(ascii: ",")) {
                    let option = trimmed(element)
                    if equalsLowercase(option, "close") { connectionClose = true }
                    if equalsLowercase(option, "keep-alive") { connectionKeepAlive = true }
                }
            } else if equalsLowercase(nameBytes, "expect") {
                guard equalsLowercase(trimmed(valueBytes[...]), "100-continue") else {
                    throw HTTPParseError(.expectationFailed, "only Expect: 100-continue is supported")
                }
                // HTTP/1.0 clients do not know 100 Continue (RFC 9110 §10.1.1): ignore it for them.
                expectsContinue = version == .http1_1
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
        let (path, query) = try splitTarget(target, method: method)
        return HTTPRequestHead(method: method, target: String(decoding: target, as: UTF8.self), path: path, query: query, version: version,
                               headers: headers, keepAlive: keepAlive, expectsContinue: expectsContinue && framing != .none,
                               framing: framing)
    }

    private static let knownCodings: Set<String> = ["chunked", "gzip", "x-gzip", "deflate", "compress", "x-compress"]

    /// `name: value` with OWS trimmed; no whitespace before the colon, no obs-fold, no control characters.
    static func field(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> (ArraySlice<UInt8>, ArraySlice<UInt8>) {
        guard let first = line.first else { throw .bad("empty header line") }
        guard first != ByteClass.space && first != ByteClass.tab else { throw .bad("obsolete line folding (obs-fold) is not allowed") }
        guard let colon = line.firstIndex(of: ByteClass.colon) else { throw .bad("header line without a colon") }
        let name = line[line.startIndex..<colon]
        guard !name.isEmpty else { throw .bad("empty header name") }
        guard name.allSatisfy({ ByteClass.token[Int($0)] }) else {
            let last = name.last!
            throw .bad(last == ByteClass.space || last == ByteClass.tab ? "whitespace between a header name and its colon" : "invalid header name")
        }
        let value = trimmed(line[(colon + 1)...])
        guard value.allSatisfy({ ByteClass.fieldValue[Int($0)] }) else { throw .bad("control character in a header value") }
        return (name, value)
    }

    private static func parseRequestLine(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> (String, ArraySlice<UInt8>, HTTPVersion) {
        guard let firstSpace = line.firstIndex(of: ByteClass.space) else { throw .bad("malformed request line") }
        let method = line[line.startIndex..<firstSpace]
        guard !method.isEmpty, method.allSatisfy({ ByteClass.token[Int($0)] }) else { throw .bad("invalid method") }
        let rest = line[(firstSpace + 1)...]
        guard let secondSpace = rest.firstIndex(of: ByteClass.space) else { throw .bad("malformed request line") }
        let target = rest[rest.startIndex..<secondSpace]
        guard !target.isEmpty, target.allSatisfy({ ByteClass.target[Int($0)] }) else { throw .bad("invalid request target") }
        try checkPercentEncoding(target)
        let version = try parseVersion(rest[(secondSpace + 1)...])
        return (String(decoding: method, as: UTF8.self), target, version)
    }

    private static func parseVersion(_ bytes: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPVersion {
        let prefix = Array("HTTP/".utf8)
        guard bytes.count == 8, bytes.prefix(5).elementsEqual(prefix), bytes[bytes.startIndex + 6] == UInt8(ascii: "."),
              let major = digit(bytes[bytes.startIndex + 5]), let minor = digit(bytes[bytes.startIndex + 7]) else {
            throw .bad("malformed HTTP version")
        }
        guard major == 1, minor <= 1 else { throw HTTPParseError(.versionNotSupported, "only HTTP/1.0 and HTTP/1.1 are supported") }
        return HTTPVersion(major: major, minor: minor)
    }

    private static func digit(_ byte: UInt8) -> Int? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
    }

    private static func checkPercentEncoding(_ target: ArraySlice<UInt8>) throws(HTTPParseError) {
        var index = target.startIndex
        while let percent = target[index...].firstIndex(of: UInt8(ascii: "%")) {
            guard percent + 2 < target.endIndex, ByteClass.hexValue(target[percent + 1]) != nil,
                  ByteClass.hexValue(target[percent + 2]) != nil else { throw .bad("invalid percent-encoding in the target") }
            index = percent + 3
        }
    }

    private static func parseContentLength(_ bytes: ArraySlice<UInt8>) throws(HTTPParseError) -> Int {
        guard !bytes.isEmpty, bytes.count <= 18 else { throw .bad("invalid Content-Length") }
        var value = 0
        for byte in bytes {
            guard let d = digit(byte) else { throw .bad("invalid Content-Length") }
            value = value * 10 + d
        }
        return value
    }

    /// Origin-form (`/path?query`), absolute-form (`http://host/path?query`), or `*` for OPTIONS; worked out on the
    /// target's bytes (this runs for every request), making only the path and query strings.
    private static func splitTarget(_ target: ArraySlice<UInt8>, method: String) throws(HTTPParseError) -> (String, String?) {
        var rest = target
        if rest.count == 1 && rest.first == UInt8(ascii: "*") {
            guard method == "OPTIONS" else { throw .bad("asterisk-form target is only for OPTIONS") }
            return ("*", nil)
        }
        if rest.first != UInt8(ascii: "/") {
            let schemeLength = startsWithLowercase(rest, "http://") ? 7 : startsWithLowercase(rest, "https://") ? 8 : 0
            guard schemeLength > 0 else { throw .bad("invalid request target") }
            rest = rest.dropFirst(schemeLength)
            let authorityEnd = rest.firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? rest.endIndex
            let authority = rest[rest.startIndex..<authorityEnd]
            guard !authority.isEmpty, !authority.contains(UInt8(ascii: "@")) else { throw .bad("invalid authority in the target") }
            rest = rest[authorityEnd...]
            if rest.first != UInt8(ascii: "/") {
                // `http://host?q` has an empty path: it means `/`.
                let query = rest.first == UInt8(ascii: "?") ? String(decoding: rest.dropFirst(), as: UTF8.self) : nil
                return ("/", query)
            }
        }
        if let question = rest.firstIndex(of: UInt8(ascii: "?")) {
            return (String(decoding: rest[rest.startIndex..<question], as: UTF8.self),
                    String(decoding: rest[(question + 1)...], as: UTF8.self))
        }
        return (String(decoding: rest, as: UTF8.self), nil)
    }

    private static func startsWithLowercase(_ bytes: ArraySlice<UInt8>, _ prefix: StaticString) -> Bool {
        bytes.count >= prefix.utf8CodeUnitCount && equalsLowercase(bytes.prefix(prefix.utf8CodeUnitCount), prefix)
    }

    static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var slice = bytes
        while let first = slice.first, first == ByteClass.space || first == ByteClass.tab { slice = slice.dropFirst() }
        while let last = slice.last, last == ByteClass.space || last == ByteClass.tab { slice = slice.dropLast() }
        return slice
    }
}

/// Splits a head (already checked for bare CR/LF) into its CRLF-separated lines.
struct LineIterator: IteratorProtocol {
    var bytes: ArraySlice<UInt8>

    mutating func next() -> ArraySlice<UInt8>? {
        guard !bytes.isEmpty else { return nil }
        var index = bytes.startIndex
        while index < bytes.endIndex {
            if bytes[index] == ByteClass.cr && index + 1 < bytes.endIndex && bytes[index + 1] == ByteClass.lf {
                let line = bytes[bytes.startIndex..<index]
                bytes = bytes[(index + 2)...]
                return line
            }
            index += 1
        }
        let line = bytes
        bytes = bytes[bytes.endIndex...]
        return line
    }
}
