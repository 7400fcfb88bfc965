import FoundationEssentials
import HTTP1
import Poetry
import Reactor

/// The body of `POST /api/servers`. Everything but `poem` is optional; defaults are `poetry serve`'s.
struct ServerRequest: Decodable {
    var poem: String
    var mode: String?
    var port: Int?
    var iface: String?
    var numBytes: Int?
    var delay: Double?

    static func decode(_ body: [UInt8]) throws(GatewayError) -> ServerRequest {
        guard !body.isEmpty else { throw .badRequest("send a JSON object such as {\"poem\":\"ecstasy\"}") }
        do {
            return try JSONDecoder().decode(ServerRequest.self, from: Data(body))
        } catch let DecodingError.keyNotFound(key, _) {
            throw .badRequest("missing field '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(type, context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw .badRequest("field '\(field)' must be \(Self.describe(type))")
        } catch let DecodingError.valueNotFound(type, context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw .badRequest("field '\(field)' must be \(Self.describe(type)), not null")
        } catch {
            throw .badRequest("the body is not valid JSON")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        if type == Int.self { return "an integer" }
        if type == Double.self { return "a number" }
        if type == String.self { return "a string" }
        return "an object"
    }

    /// Checks every field and builds the server's configuration.
    func validated(catalog: PoemCatalog, allowRemote: Bool) throws(GatewayError) -> (PoemCatalog.Entry, FetchMode, PoetryServerConfig) {
        guard let entry = catalog.entry(named: poem) else {
            throw .notFound("no poem named '\(poem)'; GET /api/poems lists them")
        }
        let mode: FetchMode
        switch self.mode ?? "blocking" {
        case "blocking": mode = .blocking
        case "async": mode = .async
        case let other: throw .badRequest("unknown mode '\(other)': use blocking or async")
        }
        let port = self.port ?? 0
        guard port == 0 || (1024...65535).contains(port) else {
            throw .badRequest("port must be 0 (any free port) or between 1024 and 65535")
        }
        let numBytes = self.numBytes ?? PoetryServerConfig.defaultNumBytes
        guard (1...65536).contains(numBytes) else { throw .badRequest("numBytes must be between 1 and 65536") }
        let delay = self.delay ?? PoetryServerConfig.defaultDelay
        guard delay.isFinite, (0...60).contains(delay) else { throw .badRequest("delay must be between 0 and 60 seconds") }
        let iface = self.iface ?? "127.0.0.1"
        let address: SocketAddress
        do {
            address = try SocketAddress(host: iface, port: UInt16(port))
        } catch {
            throw .badRequest("iface must be an IP address such as 127.0.0.1")
        }
        guard address.isLoopback || allowRemote else {
            throw .forbidden("servers bind only to loopback unless the gateway runs with --allow-remote-servers")
        }
        let bytes: [UInt8]
        do {
            bytes = try PoemCatalog.read(path: entry.path)
        } catch {
            throw .notFound(error.description)
        }
        return (entry, mode, PoetryServerConfig(poem: bytes, address: address, numBytes: numBytes, delay: delay))
    }
}
