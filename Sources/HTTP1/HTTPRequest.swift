
/// A complete request: its head and its whole body (bounded by the limits).
public struct HTTPRequest: Sendable {
    public let head: HTTPRequestHead
    public let body: [UInt8]

    public init(head: HTTPRequestHead, body: [UInt8]) {
        self.head = head
        self.body = body
    }

    public var method: String { head.method }
    public var path: String { head.path }
    public var headers: HTTPRequestHeaders { head.headers }

    /// Query parameters, percent-decoded, in order.
    public var queryItems: [(name: String, value: String)] { QueryString.parse(head.query ?? "") }

    /// The first value of query parameter `name`.
    public func query(_ name: String) -> String? {
        queryItems.first { $0.name == name }?.value
    }
}
