#if canImport(Glibc)
import Glibc
#endif

/// What the parser yields, in order: a head, any body parts, then the end of that request.
public enum HTTPParserEvent: Sendable, Equatable {
    case head(HTTPRequestHead)
    case body([UInt8])
    case end
}

/// An HTTP/1.1 request parser fed bytes as they arrive, in any split, with no socket in sight (sans-IO).
///
/// Strict where laxity lets requests be smuggled: a lone CR or LF anywhere in a head or chunk framing is an error
/// (we do not take the RFC's option to accept a bare LF, so two parsers can never disagree on where a request
/// ends), as are obs-fold, whitespace before a colon, Content-Length with Transfer-Encoding, and conflicting
/// lengths. After an error the parser stays failed: the connection must close.
public struct HTTPRequestParser {
    public let limits: HTTPLimits

    private var buffer: [UInt8] = []
    /// Bytes before this index are consumed.
    private var start = 0
    /// Where the search for the end of the current head (or line) resumes, so no byte is scanned twice.
    private var scan = 0

    private enum State {
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case failed(HTTPParseError)
    }
    private var state = State.head
    /// The last head's storage, refilled for the next head once the request is done with it (one allocation
    /// fewer per request on a keep-alive connection).
    private var spareHead: HeadBuffer?
    private var bodyReceived = 0
    /// Whether the current head's request line has ended (for the 414 check).
    private var requestLineSeen = false
    private var trailerCount = 0
    /// Whether the request just ended carried trailer fields. Servers close after such requests: trailers are rare,
    /// and a trailer line that reads like a request line is a known desync shape between parsers.
    public private(set) var sawTrailers = false

    public init(limits: HTTPLimits = HTTPLimits()) {
        self.limits = limits
    }

    /// Bytes received but not yet parsed.
    public var bufferedBytes: Int { buffer.count - start }

    /// True between a head and its end.
    public var isInBody: Bool {
        switch state {
        case .head, .failed: return false
        default: return true
        }
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            scan -= start
            start = 0
        } else if start > 4096 && start * 2 > buffer.count {
            buffer.removeSubrange(0..<start)
            scan -= start
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// The next complete event, nil when more bytes are needed, or the error that ends the connection.
    public mutating func next() throws(HTTPParseError) -> HTTPParserEvent? {
        switch state {
        case .failed(let error):
            throw error
        case .head:
            return try parseHeadIfComplete()
        case .fixedBody(let remaining):
            let available = buffer.count - start
            guard available > 0 else { return nil }
            let take = min(available, remaining)
            let part = Array(buffer[start..<start + take])
            consume(take)
            if remaining - take == 0 {
                state = .head
                pendingEnd = true
            } else {
                state = .fixedBody(remaining: remaining - take)
            }
            return .body(part)
        default:
            return try parseChunked()
        }
    }

    /// Set when a body part was the last one; `.end` follows on the next call.
    private var pendingEnd = false

    private mutating func consume(_ count: Int) {
        start += count
        scan = max(scan, start)
    }

    private mutating func fail(_ error: HTTPParseError) -> HTTPParseError {
        state = .failed(error)
        return error
    }

    // MARK: head

    private mutating func parseHeadIfComplete() throws(HTTPParseError) -> HTTPParserEvent? {
        if pendingEnd {
            pendingEnd = false
            return .end
        }
        // RFC 9112 §2.2: ignore empty lines before a request line.
        while buffer.count - start >= 2 && buffer[start] == ByteClass.cr && buffer[start + 1] == ByteClass.lf {
            consume(2)
        }
        if buffer.count - start == 1 && buffer[start] == ByteClass.cr { return nil }
        guard let headEnd = try findHeadEnd() else { return nil }
        let headStart = start
        var spare = spareHead.take()
        defer { spareHead = spare }
        let limits = self.limits
        let head: HTTPRequestHead
        do {
            head = try buffer.withUnsafeBufferPointer { (buffer) throws(HTTPParseError) in
                try HeadParser.parse(UnsafeBufferPointer(rebasing: buffer[headStart..<headEnd]), limits: limits, spare: &spare)
            }
        } catch {
            throw fail(error)
        }
        consume(headEnd + 4 - start)
        bodyReceived = 0
        requestLineSeen = false
        sawTrailers = false
        switch head.framing {
        case .none, .length(0):
            pendingEnd = true
        case .length(let count):
            if count > limits.maxBodyBytes {
                throw fail(HTTPParseError(.contentTooLarge, "request body of \(count) bytes exceeds the limit of \(limits.maxBodyBytes)"))
            }
            state = .fixedBody(remaining: count)
        case .chunked:
            state = .chunkSize
        }
        return .head(head)
    }

    /// Index of the CRLFCRLF ending the head, checking line endings and size limits on the way. Runs over every
    /// byte of every head, so it reads through a pointer with the state in locals.
    private mutating func findHeadEnd() throws(HTTPParseError) -> Int? {
        let from = max(scan, start)
        let start = self.start
        let requestLineLimit = start + limits.maxRequestLineBytes
        let headLimit = start + limits.maxHeaderBytes
        var lineSeen = requestLineSeen
        // Far from the limits (every request but an oversized one), no byte can break them: jump from line end to
        // line end with memchr. Near them, walk byte by byte so the exact limit is enforced.
        let withinLimits = buffer.count <= (lineSeen ? headLimit : min(requestLineLimit, headLimit))
        let outcome = buffer.withUnsafeBufferPointer { bytes in
            withinLimits
                ? Self.scanLines(bytes, from: from, start: start, lineSeen: &lineSeen)
                : Self.scanHead(bytes, from: from, start: start, requestLineLimit: requestLineLimit, headLimit: headLimit, lineSeen: &lineSeen)
        }
        requestLineSeen = lineSeen
        switch outcome {
        case .end(let index):
            scan = index + 1
            return index - 3
        case .more(let end):
            // Leave the last byte to be rescanned: a CR at the end needs to see what follows it.
            scan = max(start, end - 1)
            return nil
        case .bareLF:
            throw fail(.bad("bare LF in the request head; lines must end with CRLF"))
        case .bareCR:
            throw fail(.bad("bare CR in the request head"))
        case .uriTooLong:
            throw fail(HTTPParseError(.uriTooLong, "request line longer than \(limits.maxRequestLineBytes) bytes"))
        case .headTooLarge:
            throw fail(HTTPParseError(.headerFieldsTooLarge, "header section larger than \(limits.maxHeaderBytes) bytes"))
        }
    }

    private enum HeadScan { case more(Int), end(Int), bareLF, bareCR, uriTooLong, headTooLarge }

    /// `findHeadEnd`'s fast path: finds each LF with memchr, then checks that a CR precedes it and no other CR
    /// lies in the line. Same results as `scanHead` when no limit is in reach.
    private static func scanLines(_ bytes: UnsafeBufferPointer<UInt8>, from: Int, start: Int, lineSeen: inout Bool) -> HeadScan {
        guard let base = bytes.baseAddress else { return .more(0) }
        let end = bytes.count
        var index = from
        var previousIsCR = index > start && bytes[index - 1] == ByteClass.cr
        func containsCR(_ lower: Int, _ upper: Int) -> Bool {
            upper > lower && memchr(base + lower, Int32(ByteClass.cr), upper - lower) != nil
        }
        while index < end {
            guard let found = memchr(base + index, Int32(ByteClass.lf), end - index) else {
                // No line end yet: only the last byte may be a CR (its LF may be on its way).
                if previousIsCR || containsCR(index, end - 1) { return .bareCR }
                return .more(end)
            }
            let lf = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
            if lf == index {
                guard previousIsCR else { return .bareLF }
            } else {
                if previousIsCR || containsCR(index, lf - 1) { return .bareCR }
                guard bytes[lf - 1] == ByteClass.cr else { return .bareLF }
            }
            lineSeen = true
            if lf - start >= 3 && bytes[lf - 2] == ByteClass.lf && bytes[lf - 3] == ByteClass.cr {
                return .end(lf)
            }
            previousIsCR = false
            index = lf + 1
        }
        return .more(end)
    }

    /// The loop behind `findHeadEnd` near the limits, byte by byte with everything in registers.
    private static func scanHead(_ bytes: UnsafeBufferPointer<UInt8>, from: Int, start: Int, requestLineLimit: Int,
                                 headLimit: Int, lineSeen: inout Bool) -> HeadScan {
        let end = bytes.count
        var index = from
        var previousIsCR = index > start && bytes[index - 1] == ByteClass.cr
        var seen = lineSeen
        defer { lineSeen = seen }
        while index < end {
            let byte = bytes[index]
            if byte == ByteClass.lf {
                guard previousIsCR else { return .bareLF }
                seen = true
                if index - start >= 3 && bytes[index - 2] == ByteClass.lf && bytes[index - 3] == ByteClass.cr {
                    return .end(index)
                }
                previousIsCR = false
            } else {
                if previousIsCR { return .bareCR }
                previousIsCR = byte == ByteClass.cr
            }
            if !seen && index >= requestLineLimit { return .uriTooLong }
            if index >= headLimit { return .headTooLarge }
            index += 1
        }
        return .more(end)
    }

    // MARK: chunked body

    private mutating func parseChunked() throws(HTTPParseError) -> HTTPParserEvent? {
        while true {
            switch state {
            case .chunkSize:
                guard let lineEnd = try findLineEnd(limit: limits.maxChunkLineBytes, what: "chunk-size line") else { return nil }
                let size: Int
                do {
                    size = try ChunkLine.size(buffer[start..<lineEnd])
                } catch {
                    throw fail(error)
                }
                consume(lineEnd + 2 - start)
                if size == 0 {
                    state = .trailers
                    trailerCount = 0
                    continue
                }
                bodyReceived += size
                if bodyReceived > limits.maxBodyBytes {
                    throw fail(HTTPParseError(.contentTooLarge, "chunked body exceeds the limit of \(limits.maxBodyBytes) bytes"))
                }
                state = .chunkData(remaining: size)
            case .chunkData(let remaining):
                let available = buffer.count - start
                guard available > 0 else { return nil }
                let take = min(available, remaining)
                let part = Array(buffer[start..<start + take])
                consume(take)
                state = remaining == take ? .chunkDataEnd : .chunkData(remaining: remaining - take)
                return .body(part)
            case .chunkDataEnd:
                guard buffer.count - start >= 2 else {
                    if buffer.count - start == 1 && buffer[start] != ByteClass.cr {
                        throw fail(.bad("chunk data not followed by CRLF"))
                    }
                    return nil
                }
                guard buffer[start] == ByteClass.cr && buffer[start + 1] == ByteClass.lf else {
                    throw fail(.bad("chunk data not followed by CRLF"))
                }
                consume(2)
                state = .chunkSize
            case .trailers:
                guard let lineEnd = try findLineEnd(limit: limits.maxHeaderBytes, what: "trailer section") else { return nil }
                let line = buffer[start..<lineEnd]
                consume(lineEnd + 2 - start)
                if line.isEmpty {
                    state = .head
                    return .end
                }
                trailerCount += 1
                sawTrailers = true
                if trailerCount > limits.maxHeaderCount {
                    throw fail(HTTPParseError(.headerFieldsTooLarge, "too many trailer fields"))
                }
                do {
                    try HeadParser.checkField(line)
                } catch {
                    throw fail(error)
                }
            default:
                return nil
            }
        }
    }

    /// Index of the CR of the next CRLF from `start`; a bare CR or LF is an error.
    private mutating func findLineEnd(limit: Int, what: String) throws(HTTPParseError) -> Int? {
        var index = max(scan, start)
        while index < buffer.count {
            let byte = buffer[index]
            if byte == ByteClass.lf {
                guard index > start, buffer[index - 1] == ByteClass.cr else {
                    throw fail(.bad("bare LF in the \(what)"))
                }
                scan = index + 1
                return index - 1
            } else if index > start && buffer[index - 1] == ByteClass.cr {
                throw fail(.bad("bare CR in the \(what)"))
            }
            if index - start >= limit {
                throw fail(.bad("\(what) longer than \(limit) bytes"))
            }
            index += 1
        }
        scan = max(start, buffer.count - 1)
        return nil
    }
}

/// Chunk-size lines: 1*HEXDIG, then optional `;name[=value]` extensions (whitespace allowed before each `;`, the
/// BWS of RFC 9112 §7.1.1), nothing else: whitespace that no extension follows is refused.
enum ChunkLine {
    static func size(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> Int {
        var size = 0
        var digits = 0
        var index = line.startIndex
        while index < line.endIndex, let value = ByteClass.hexValue(line[index]) {
            // 15 hex digits fit an Int without overflow; more is an attack or a mistake.
            guard digits < 15 || (size == 0 && value == 0) else { throw .bad("chunk size too large") }
            if size != 0 || value != 0 { digits += 1 }
            size = size * 16 + value
            index += 1
        }
        guard index > line.startIndex else { throw .bad("invalid chunk size") }
        var afterSize = index
        while afterSize < line.endIndex && (line[afterSize] == ByteClass.space || line[afterSize] == ByteClass.tab) { afterSize += 1 }
        if afterSize > index && afterSize < line.endIndex && line[afterSize] == UInt8(ascii: ";") { index = afterSize }
        guard index == line.endIndex || line[index] == UInt8(ascii: ";") else { throw .bad("invalid chunk size") }
        if index < line.endIndex { try extensions(line[index...]) }
        return size
    }

    /// `;name` or `;name=token` or `;name="quoted"`, repeated; whitespace only around ';' and '='.
    private static func extensions(_ bytes: ArraySlice<UInt8>) throws(HTTPParseError) {
        var index = bytes.startIndex
        func skipWhitespace() {
            while index < bytes.endIndex && (bytes[index] == ByteClass.space || bytes[index] == ByteClass.tab) { index += 1 }
        }
        func token() -> Bool {
            let begin = index
            while index < bytes.endIndex && ByteClass.token.contains(bytes[index]) { index += 1 }
            return index > begin
        }
        while index < bytes.endIndex {
            guard bytes[index] == UInt8(ascii: ";") else { throw .bad("invalid chunk extension") }
            index += 1
            skipWhitespace()
            guard token() else { throw .bad("invalid chunk extension name") }
            skipWhitespace()
            if index < bytes.endIndex && bytes[index] == UInt8(ascii: "=") {
                index += 1
                skipWhitespace()
                if index < bytes.endIndex && bytes[index] == UInt8(ascii: "\"") {
                    index += 1
                    var closed = false
                    while index < bytes.endIndex {
                        let byte = bytes[index]
                        if byte == UInt8(ascii: "\\") {
                            index += 2
                            continue
                        }
                        index += 1
                        if byte == UInt8(ascii: "\"") { closed = true; break }
                        guard ByteClass.fieldValue.contains(byte) else { throw .bad("invalid chunk extension value") }
                    }
                    guard closed, index <= bytes.endIndex else { throw .bad("unterminated chunk extension value") }
                } else {
                    guard token() else { throw .bad("invalid chunk extension value") }
                }
                skipWhitespace()
            }
        }
    }
}
