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
            // Foundation reports a number that does not fit its field (1.5 for an integer) as corrupt data with no
            // field named, so the body is read again to tell that from JSON that really is broken.
            if let field = fractionalIntegerField(body) { throw .badRequest("field '\(field)' must be an integer") }
            throw .badRequest("the body is not valid JSON: \(example)")
        }
    }

    /// The first integer field whose value is a number with a fraction or out of Int's range, if the body is valid
    /// JSON.
    private static func fractionalIntegerField(_ body: [UInt8]) -> String? {
        struct Numbers: Decodable {
            var port: Double?
            var numBytes: Double?
        }
        guard let numbers = try? JSONDecoder().decode(Numbers.self, from: Data(body)) else { return nil }
        for (name, value) in [("port", numbers.port), ("numBytes", numbers.numBytes)] {
            if let value, Int(exactly: value) == nil { return name }
        }
        return nil
    }

    /// Refuses a body that is not JSON by its own account (415), and a JSON object that names a field twice (a
    /// decoder would silently keep one of them). No Content-Type at all is taken as JSON.
    static func check(contentType: String?, body: [UInt8]) throws(GatewayError) {
        if let contentType {
            let mediaType = contentType.split(separator: ";", maxSplits: 1).first.map { String($0).trimmingSpaces().lowercased() } ?? ""
            guard mediaType == "application/json" else {
                throw .unsupportedMediaType("the body must be JSON (Content-Type: application/json), not '\(mediaType)'; with curl, use --json")
            }
        }
        if let repeated = repeatedTopLevelKey(body) {
            throw .badRequest("field '\(repeated)' is given more than once")
        }
    }

    /// The first key the top-level object repeats, escapes decoded (`"po\u0065m"` is `poem`); nil for anything
    /// else, including bodies that are not JSON (the decoder names those).
    static func repeatedTopLevelKey(_ body: [UInt8]) -> String? {
        var depth = 0
        var index = 0
        var seen: Set<String> = []
        while index < body.count {
            let byte = body[index]
            if byte == UInt8(ascii: "\"") {
                let start = index
                index += 1
                while index < body.count && body[index] != UInt8(ascii: "\"") {
                    index += body[index] == UInt8(ascii: "\\") ? 2 : 1
                }
                guard index < body.count else { return nil }
                index += 1
                guard depth == 1 else { continue }
                // A string at depth 1 followed by ':' is a key.
                var next = index
                while next < body.count && [0x20, 0x09, 0x0A, 0x0D].contains(body[next]) { next += 1 }
                guard next < body.count && body[next] == UInt8(ascii: ":"),
                      let key = try? JSONDecoder().decode(String.self, from: Data(body[start..<index])) else { continue }
                if !seen.insert(key).inserted { return key }
                continue
            }
            if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") { depth += 1 }
            if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") { depth -= 1 }
            index += 1
        }
        return nil
    }

    private static func describe(_ type: Any.Type) -> String {
        if type == Int.self { return "an integer" }
        if type == Double.self { return "a number" }
        if type == String.self { return "a string" }
        return "an object"
    }

    /// Checks every field and builds the server's configuration.
    /// `defaultInterface`: where a server binds when `iface` is not given (the gateway's own loopback family).
    func validated(catalog: PoemCatalog, allowRemote: Bool, defaultInterface: String = "127.0.0.1") throws(GatewayError) -> (PoemCatalog.Entry, FetchMode, PoetryServerConfig) {
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
        let iface = self.iface ?? defaultInterface
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
