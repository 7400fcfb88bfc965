import FoundationEssentials
import HTTP1
import HTTPServer
import Poetry
import Reactor

/// The body of `POST /api/servers`. Everything but `poem` is optional; defaults are `poetry serve`'s. A field the
/// API does not know is refused by name: a typo such as `num_bytes` would otherwise start a server unlike the one
/// asked for.
struct ServerRequest: Decodable {
    var poem: String
    var mode: String?
    var port: Int?
    var iface: String?
    var numBytes: Int?
    var delay: Double?

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case poem, mode, port, iface, numBytes, delay
    }

    /// Any key of the object, to find the ones `CodingKeys` lacks.
    private struct AnyKey: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    private struct UnknownField: Error {
        let name: String
    }

    init(poem: String, mode: String?, port: Int?, iface: String?, numBytes: Int?, delay: Double?) {
        (self.poem, self.mode, self.port, self.iface, self.numBytes, self.delay) = (poem, mode, port, iface, numBytes, delay)
    }

    init(from decoder: any Decoder) throws {
        if let unknown = try decoder.container(keyedBy: AnyKey.self).allKeys.first(where: { CodingKeys(stringValue: $0.stringValue) == nil }) {
            throw UnknownField(name: unknown.stringValue)
        }
        let fields = try decoder.container(keyedBy: CodingKeys.self)
        poem = try fields.decode(String.self, forKey: .poem)
        mode = try fields.decodeIfPresent(String.self, forKey: .mode)
        port = try fields.decodeIfPresent(Int.self, forKey: .port)
        iface = try fields.decodeIfPresent(String.self, forKey: .iface)
        numBytes = try fields.decodeIfPresent(Int.self, forKey: .numBytes)
        delay = try fields.decodeIfPresent(Double.self, forKey: .delay)
    }

    private static let example = "send a JSON object such as {\"poem\":\"ecstasy\"}"

    static func decode(_ body: [UInt8]) throws(GatewayError) -> ServerRequest {
        guard !body.isEmpty else { throw .badRequest(example) }
        do {
            return try JSONDecoder().decode(ServerRequest.self, from: Data(body))
        } catch let error as UnknownField {
            let known = CodingKeys.allCases.map(\.stringValue).joined(separator: ", ")
            throw .badRequest("unknown field '\(error.name)': the fields are \(known)")
        } catch let DecodingError.keyNotFound(key, _) {
            throw .badRequest("missing field '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context) where context.codingPath.isEmpty {
            throw .badRequest(example)
        } catch let DecodingError.valueNotFound(_, context) where context.codingPath.isEmpty {
            throw .badRequest(example)
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
