public struct HTTPVersion: Sendable, Equatable, CustomStringConvertible {
    public let major: Int
    public let minor: Int

    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)

    public var description: String { "HTTP/\(major).\(minor)" }
}

/// Header fields of a response, in order. They are also kept as the bytes they go out as (`Name: value` lines,
/// any CR or LF dropped so a value cannot smuggle a line into the head), so a response made from the same headers
/// again and again, like every `/healthz`, copies them in one piece.
public struct HTTPHeaders: Sendable, Equatable, Sequence {
    public private(set) var fields: [(name: String, value: String)] = []
    public private(set) var encoded: [UInt8] = []
    /// Whether a `Connection` field was given, and whether one of them says `close`.
    public private(set) var setsConnection = false
    public private(set) var asksToClose = false

    public init(_ fields: [(String, String)] = []) {
        for (name, value) in fields { add(name, value) }
    }

    public mutating func add(_ name: String, _ value: String) {
        fields.append((name, value))
        Self.encode(name, into: &encoded)
        encoded.append(contentsOf: [UInt8(ascii: ":"), UInt8(ascii: " ")])
        Self.encode(value, into: &encoded)
        encoded.append(contentsOf: [0x0D, 0x0A])
        if Self.sameName(name, "Connection") {
            setsConnection = true
            if value.lowercased().contains("close") { asksToClose = true }
        }
    }

    private static func encode(_ text: String, into bytes: inout [UInt8]) {
        for byte in text.utf8 where byte != 0x0D && byte != 0x0A { bytes.append(byte) }
    }

    /// The first value of `name`, case-insensitively.
    public subscript(name: String) -> String? {
        fields.first { Self.sameName($0.name, name) }?.value
    }

    public func values(_ name: String) -> [String] {
        fields.filter { Self.sameName($0.name, name) }.map(\.value)
    }

    /// ASCII case-insensitive comparison without building lower-cased copies.
    static func sameName(_ a: String, _ b: String) -> Bool {
        guard a.utf8.count == b.utf8.count else { return false }
        return a.utf8.elementsEqual(b.utf8) { $0.lowercasedASCII == $1.lowercasedASCII }
    }

    public func contains(_ name: String) -> Bool { self[name] != nil }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.name == $1.name && $0.value == $1.value }
    }
}

/// How a request's body is delimited.
public enum HTTPBodyFraming: Sendable, Equatable {
    case none
    case length(Int)
    case chunked
}

/// A parsed request line and header section. The head's bytes are kept once (shared by every copy); the method
/// and path, which every request needs, are strings made at parse time, the rest is made on demand.
public struct HTTPRequestHead: Sendable, Equatable {
    let storage: HeadStorage
    public let method: String
    /// The path part of the target, still percent-encoded (absolute-form targets are reduced to it).
    public let path: String
    private let targetSpan: (start: Int32, end: Int32)
    /// Start of the query in the head's bytes, or -1 without a '?'; it ends where the target ends.
    private let queryStart: Int32
    public var version: HTTPVersion
    /// Whether the connection may carry another request after this one.
    public var keepAlive: Bool
    public var expectsContinue: Bool
    public var framing: HTTPBodyFraming
    /// Whether the target was sent as to a proxy (`http://host/path`): then `absoluteFormAuthority` names the host.
    /// Known from parsing, so the host check of every other request costs one load.
    public let isAbsoluteForm: Bool

    init(storage: HeadStorage, method: String, path: String, target: (start: Int32, end: Int32), queryStart: Int32,
         version: HTTPVersion, keepAlive: Bool, expectsContinue: Bool, framing: HTTPBodyFraming, isAbsoluteForm: Bool = false) {
        self.storage = storage
        self.method = method
        self.path = path
        self.targetSpan = target
        self.queryStart = queryStart
        self.version = version
        self.keepAlive = keepAlive
        self.expectsContinue = expectsContinue
        self.framing = framing
        self.isAbsoluteForm = isAbsoluteForm
    }

    /// The target exactly as sent.
    public var target: String { storage.string(targetSpan.start, targetSpan.end) }
    /// The authority (`host[:port]`) of an absolute-form target (`http://host:port/path`), which RFC 9112 §3.2.2
    /// says an origin server must use instead of the Host header; nil for origin-form and asterisk-form targets.
    public var absoluteFormAuthority: String? {
        guard isAbsoluteForm else { return nil }
        return storage.withBytes(targetSpan.start, targetSpan.end) { target -> String? in
            // The parser accepted only http:// and https:// (any case) before an authority, and no '@' in it.
            guard let colon = target.firstIndex(of: UInt8(ascii: ":")) else { return nil }
            let authority = target[(colon + 3)...].prefix { $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "?") }
            return String(decoding: authority, as: UTF8.self)
        }
    }
    /// The query after '?', still percent-encoded, if any.
    public var query: String? { queryStart < 0 ? nil : storage.string(queryStart, targetSpan.end) }
    public var headers: HTTPRequestHeaders { HTTPRequestHeaders(storage: storage) }

    /// Checked per response: the length test spares most methods a string comparison.
    public var isHead: Bool { method.utf8.count == 4 && method == "HEAD" }

    public static func == (lhs: HTTPRequestHead, rhs: HTTPRequestHead) -> Bool {
        lhs.method == rhs.method && lhs.target == rhs.target && lhs.path == rhs.path && lhs.query == rhs.query
            && lhs.version == rhs.version && lhs.keepAlive == rhs.keepAlive && lhs.expectsContinue == rhs.expectsContinue
            && lhs.framing == rhs.framing
            && lhs.headers.elementsEqual(rhs.headers) { $0.name == $1.name && $0.value == $1.value }
    }
}
