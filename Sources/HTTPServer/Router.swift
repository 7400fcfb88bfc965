import HTTP1
/// Values captured from `{name}` segments of a route pattern, percent-decoded.
public struct RouteParameters: Sendable {
    public var values: [String: String] = [:]
    public subscript(name: String) -> String? { values[name] }
}

public typealias RouteHandler = (HTTPRequest, RouteParameters, HTTPResponseWriter) -> Void

// @exclusivity(unchecked) marks hot-path state that is confined to the reactor thread and never accessed in
// overlapping ways (each access is a plain read or write with no call inside it), so the runtime exclusivity
// check, about a sixth of the server's user-space instructions per request (BENCHMARKS.md), guards nothing here.
public final class Router {
    public struct Route {
        public let method: String
        public let pattern: String
        let handler: RouteHandler
    }

    @exclusivity(unchecked) public private(set) var routes: [Route] = []
    /// Handles GET/HEAD requests no route matched (static files); nil means 404.
    @exclusivity(unchecked) public var fallback: HTTPHandler?

    /// The patterns as flat tables of plain values, so matching a request touches no reference counts: each
    /// route's segments are a run of `segments`, literals are byte ranges of `literalBytes`.
    private struct Segment {
        /// Index into `parameterNames`, or -1 for a literal.
        var parameter: Int32
        var start: Int32
        var end: Int32
    }
    private struct RouteShape {
        var method: MethodCode
        var firstSegment: Int32
        var segmentCount: Int32
    }
    @exclusivity(unchecked) private var shapes: [RouteShape] = []
    @exclusivity(unchecked) private var segments: [Segment] = []
    @exclusivity(unchecked) private var literalBytes: [UInt8] = []
    @exclusivity(unchecked) private var parameterNames: [String] = []

    public init() {}

    public func add(_ method: String, _ pattern: String, _ handler: @escaping RouteHandler) {
        let first = segments.count
        for part in Self.split(pattern) {
            if part.hasPrefix("{") && part.hasSuffix("}") {
                parameterNames.append(String(part.dropFirst().dropLast()))
                segments.append(Segment(parameter: Int32(parameterNames.count - 1), start: 0, end: 0))
            } else {
                let start = literalBytes.count
                literalBytes.append(contentsOf: part.utf8)
                segments.append(Segment(parameter: -1, start: Int32(start), end: Int32(literalBytes.count)))
            }
        }
        shapes.append(RouteShape(method: MethodCode(method), firstSegment: Int32(first), segmentCount: Int32(segments.count - first)))
        routes.append(Route(method: method, pattern: pattern, handler: handler))
    }

    public func get(_ pattern: String, _ handler: @escaping RouteHandler) { add("GET", pattern, handler) }
    public func post(_ pattern: String, _ handler: @escaping RouteHandler) { add("POST", pattern, handler) }
    public func delete(_ pattern: String, _ handler: @escaping RouteHandler) { add("DELETE", pattern, handler) }

    /// Where a request goes.
    public enum Match {
        case route(index: Int, parameters: RouteParameters)
        case methodNotAllowed(allowed: [String], pathPattern: String)
        case unmatched
    }

    /// Finds the route for a method and path (GET routes take HEAD too).
    public func match(method: String, path: String) -> Match {
        var wanted = MethodCode(method)
        if wanted == .head { wanted = .get }
        let found: (route: Int, methodMatched: Bool)? = Self.withBytes(of: path) { bytes in
            var pathMatched: Int?
            for index in shapes.indices where matches(shapes[index], bytes) {
                if shapes[index].method == wanted && (wanted != .other || routes[index].method == method) {
                    return (index, true)
                }
                if pathMatched == nil { pathMatched = index }
            }
            return pathMatched.map { ($0, false) }
        }
        guard let found else { return .unmatched }
        if found.methodMatched {
            return .route(index: found.route, parameters: parameters(of: found.route, path))
        }
        var allowed: [String] = []
        var pattern = ""
        Self.withBytes(of: path) { bytes in
            for index in shapes.indices where matches(shapes[index], bytes) {
                allowed.append(routes[index].method)
                pattern = routes[index].pattern
            }
        }
        return .methodNotAllowed(allowed: allowed, pathPattern: pattern)
    }

    /// The string's UTF-8 in place (paths are native strings); a copy only for one that is not contiguous.
    private static func withBytes<R>(of string: String, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let result = string.utf8.withContiguousStorageIfAvailable(body) { return result }
        var copy = string
        return copy.withUTF8(body)
    }

    /// Whether `path`'s non-empty '/'-separated segments fit the route's, literal for literal.
    private func matches(_ shape: RouteShape, _ path: UnsafeBufferPointer<UInt8>) -> Bool {
        var parts = PathSegments(path: path)
        for position in shape.firstSegment..<(shape.firstSegment + shape.segmentCount) {
            guard let part = parts.next() else { return false }
            let segment = segments[Int(position)]
            guard segment.parameter < 0 else { continue }
            guard part.count == Int(segment.end - segment.start) else { return false }
            var literal = Int(segment.start)
            for byte in path[part] {
                guard byte == literalBytes[literal] else { return false }
                literal += 1
            }
        }
        return parts.next() == nil
    }

    /// The route's parameters taken from `path`, percent-decoded (a part that does not decode is left as sent).
    private func parameters(of route: Int, _ path: String) -> RouteParameters {
        let shape = shapes[route]
        var result = RouteParameters()
        guard segments[Int(shape.firstSegment)..<Int(shape.firstSegment + shape.segmentCount)].contains(where: { $0.parameter >= 0 }) else {
            return result
        }
        let parts = Self.split(path)
        for (offset, part) in parts.enumerated() {
            let segment = segments[Int(shape.firstSegment) + offset]
            if segment.parameter >= 0 {
                result.values[parameterNames[Int(segment.parameter)]] = QueryString.percentDecode(part) ?? String(part)
            }
        }
        return result
    }

    public func handle(_ request: HTTPRequest, _ writer: HTTPResponseWriter) {
        handle(request, writer, match: match(method: request.method, path: request.path))
    }

    /// Dispatches a request already matched (so a caller that needed the match does not pay for it twice).
    public func handle(_ request: HTTPRequest, _ writer: HTTPResponseWriter, match: Match) {
        switch match {
        case .route(let index, let parameters):
            routes[index].handler(request, parameters, writer)
            return
        case .methodNotAllowed(var allowed, _):
            if allowed.contains("GET") { allowed.append("HEAD") }
            writer.respond(status: .methodNotAllowed,
                           json: .error("method_not_allowed", "\(request.method) is not allowed on \(request.path); use \(allowed.joined(separator: ", "))"),
                           headers: HTTPHeaders([("Allow", allowed.joined(separator: ", "))]))
            return
        case .unmatched:
            break
        }
        if let fallback, request.method == "GET" || request.method == "HEAD" {
            fallback(request, writer)
            return
        }
        if fallback != nil {
            writer.respond(status: .methodNotAllowed, json: .error("method_not_allowed", "\(request.method) is not allowed on \(request.path); use GET, HEAD"),
                           headers: HTTPHeaders([("Allow", "GET, HEAD")]))
            return
        }
        writer.respond(status: .notFound, json: .error("not_found", "no route for \(request.path)"))
    }

    /// A path's (or pattern's) segments as strings, split by the same `PathSegments` the matcher walks, so
    /// adding, matching and extracting parameters can never disagree on where a segment is. Off the hot path:
    /// used when a route is added and when a matched route has parameters.
    static func split(_ path: String) -> [Substring] {
        let ranges: [Range<Int>] = withBytes(of: path) { bytes in
            var parts = PathSegments(path: bytes)
            var ranges: [Range<Int>] = []
            while let range = parts.next() { ranges.append(range) }
            return ranges
        }
        let utf8 = path.utf8
        return ranges.map { range in
            path[utf8.index(utf8.startIndex, offsetBy: range.lowerBound)..<utf8.index(utf8.startIndex, offsetBy: range.upperBound)]
        }
    }
}

/// The non-empty segments of a path, as ranges of its bytes.
struct PathSegments: IteratorProtocol {
    let path: UnsafeBufferPointer<UInt8>
    var position = 0

    init(path: UnsafeBufferPointer<UInt8>) {
        self.path = path
    }

    mutating func next() -> Range<Int>? {
        while position < path.count && path[position] == UInt8(ascii: "/") { position += 1 }
        guard position < path.count else { return nil }
        let start = position
        while position < path.count && path[position] != UInt8(ascii: "/") { position += 1 }
        return start..<position
    }
}

/// Methods as small numbers, so routes compare without touching strings.
enum MethodCode: UInt8 {
    case get, head, post, put, delete, patch, options, other

    init(_ method: String) {
        switch method {
        case "GET": self = .get
        case "HEAD": self = .head
        case "POST": self = .post
        case "PUT": self = .put
        case "DELETE": self = .delete
        case "PATCH": self = .patch
        case "OPTIONS": self = .options
        default: self = .other
        }
    }
}
