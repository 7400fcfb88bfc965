/// Values captured from `{name}` segments of a route pattern, percent-decoded.
public struct RouteParameters: Sendable {
    public var values: [String: String] = [:]
    public subscript(name: String) -> String? { values[name] }
}

public typealias RouteHandler = (HTTPRequest, RouteParameters, HTTPResponseWriter) -> Void

/// Method and path patterns (`/api/servers/{id}`) to handlers. An unknown path is 404; a known path with another
/// method is 405 with `Allow`. GET routes answer HEAD too (the writer drops the body).
public final class Router {
    public struct Route {
        public let method: String
        public let pattern: String
        let segments: [Segment]
        let handler: RouteHandler
    }

    enum Segment: Equatable {
        case literal(String)
        case parameter(String)
    }

    public private(set) var routes: [Route] = []
    /// Handles GET/HEAD requests no route matched (static files); nil means 404.
    public var fallback: HTTPHandler?

    public init() {}

    public func add(_ method: String, _ pattern: String, _ handler: @escaping RouteHandler) {
        let segments = Self.split(pattern).map { part -> Segment in
            part.hasPrefix("{") && part.hasSuffix("}") ? .parameter(String(part.dropFirst().dropLast())) : .literal(String(part))
        }
        routes.append(Route(method: method, pattern: pattern, segments: segments, handler: handler))
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
        let parts = Self.split(path)
        let wanted = method == "HEAD" ? "GET" : method
        var allowed: [String] = []
        var pattern = ""
        for (index, route) in routes.enumerated() {
            guard let parameters = Self.match(route.segments, parts) else { continue }
            if route.method == wanted { return .route(index: index, parameters: parameters) }
            allowed.append(route.method)
            pattern = route.pattern
        }
        return allowed.isEmpty ? .unmatched : .methodNotAllowed(allowed: allowed, pathPattern: pattern)
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

    /// Path segments, split on the UTF-8 bytes (no Character-by-Character walk: this runs per request).
    static func split(_ path: String) -> [Substring] {
        var parts: [Substring] = []
        let utf8 = path.utf8
        var start = utf8.startIndex
        var index = start
        while index != utf8.endIndex {
            if utf8[index] == UInt8(ascii: "/") {
                if index != start { parts.append(Substring(path[start..<index])) }
                start = utf8.index(after: index)
            }
            index = utf8.index(after: index)
        }
        if start != utf8.endIndex { parts.append(Substring(path[start..<utf8.endIndex])) }
        return parts
    }

    static func match(_ segments: [Segment], _ parts: [Substring]) -> RouteParameters? {
        guard segments.count == parts.count else { return nil }
        var parameters = RouteParameters()
        for (segment, part) in zip(segments, parts) {
            switch segment {
            case .literal(let text):
                guard text == part else { return nil }
            case .parameter(let name):
                guard let value = QueryString.percentDecode(part) else { return nil }
                parameters.values[name] = value
            }
        }
        return parameters
    }
}
