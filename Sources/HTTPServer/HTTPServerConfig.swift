import HTTP1
/// How an HTTP server behaves toward its clients. Defaults are documented in the README.
public struct HTTPServerConfig: Sendable {
    public var limits = HTTPLimits()
    /// Seconds a client has to send a complete request head, from its first byte. A client trickling its head a
    /// byte at a time is closed when this runs out.
    public var headerTimeout = 10.0
    /// Seconds a keep-alive connection may sit between requests.
    public var idleTimeout = 60.0
    /// Seconds a client has to send a request body once its head arrived.
    public var bodyTimeout = 30.0
    /// Connections held at once; beyond this, accepting pauses until one closes.
    public var maxConnections = 10_000
    /// The `Server` header.
    public var serverName = "poetry-gateway"
    /// Request bytes held for later pipelined requests before reading pauses.
    public var maxPipelinedBytes = 64 * 1024

    public init() {}
}
