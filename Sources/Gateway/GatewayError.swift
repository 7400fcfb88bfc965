import HTTP1
import HTTPServer
import Reactor

/// A request the gateway refuses, with the status and words the caller gets.
enum GatewayError: Error {
    /// Nothing the route can send is acceptable by the request's `Accept` (406); the media types it offers.
    case noAcceptableMediaType(offered: [String])
    /// A request body of a type the route does not take (415).
    case unsupportedMediaType(String)
    case badRequest(String)
    case notFound(String)
    case conflict(String)
    /// A missing or wrong bearer token (policy refusals are `forbidden`).
    case unauthorized(String)
    case forbidden(String)
    case tooManyServers(Int)
    case tooManyTargets(Int)
    case tooManyStreams(Int)
    case tooManyBlockingFetches(Int)
    case tooManyFetchSockets(Int)
    case listen(SocketAddress, String, inUse: Bool)

    var status: HTTPStatus {
        switch self {
        case .noAcceptableMediaType: return .notAcceptable
        case .unsupportedMediaType: return .unsupportedMediaType
        case .badRequest: return .badRequest
        case .notFound: return .notFound
        case .conflict: return .conflict
        case .unauthorized: return .unauthorized
        case .forbidden: return .forbidden
        case .tooManyServers, .tooManyStreams, .tooManyBlockingFetches, .tooManyFetchSockets: return .tooManyRequests
        case .tooManyTargets: return .contentTooLarge
        case .listen(_, _, let inUse): return inUse ? .conflict : .badRequest
        }
    }

    var code: String {
        switch self {
        case .noAcceptableMediaType: return "not_acceptable"
        case .unsupportedMediaType: return "unsupported_media_type"
        case .badRequest: return "bad_request"
        case .notFound: return "not_found"
        case .conflict: return "conflict"
        case .unauthorized: return "unauthorized"
        case .forbidden: return "forbidden"
        case .tooManyServers: return "too_many_servers"
        case .tooManyTargets: return "too_many_targets"
        case .tooManyStreams: return "too_many_streams"
        case .tooManyBlockingFetches: return "too_many_blocking_fetches"
        case .tooManyFetchSockets: return "too_many_fetch_sockets"
        case .listen(_, _, let inUse): return inUse ? "port_in_use" : "listen_failed"
        }
    }

    var message: String {
        switch self {
        case .unsupportedMediaType(let text): return text
        case .noAcceptableMediaType(let offered):
            return "the Accept header allows none of \(offered.joined(separator: ", ")); accept one, or give format=text, ndjson or sse"
        case .badRequest(let text), .notFound(let text), .conflict(let text), .unauthorized(let text), .forbidden(let text):
            return text
        case .tooManyServers(let limit): return "at most \(limit) servers may run at once; stop one first"
        case .tooManyTargets(let limit): return "at most \(limit) targets per fetch"
        case .tooManyStreams(let limit): return "at most \(limit) fetch streams may be open at once"
        case .tooManyFetchSockets(let limit):
            return "fetches hold \(limit) sockets at most at once (what the descriptor limit leaves beside the HTTP connections); try again when others end, or with fewer targets"
        case .tooManyBlockingFetches(let limit): return "at most \(limit) fetch threads may run at once (a blocking fetch holds one, a threaded fetch one per target); use mode=async"
        case .listen(let address, let reason, _): return "cannot listen on \(address): \(reason)"
        }
    }

    private static let bearerChallenge = HTTPHeaders([("WWW-Authenticate", #"Bearer realm="poetry-gateway""#)])

    func respond(_ writer: HTTPResponseWriter) {
        if case .unauthorized = self {
            // RFC 6750: a 401 says which scheme would do.
            writer.respond(status: status, json: .error(code, message), headers: Self.bearerChallenge)
            return
        }
        writer.respond(status: status, json: .error(code, message))
    }
}
