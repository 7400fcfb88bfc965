import HTTP1
import Reactor

/// How an HTTP server behaves toward its clients. Defaults are documented in the README.
public struct HTTPServerConfig: Sendable {
    public var limits = HTTPLimits()
    /// Seconds a client has to send a complete request head, from its first byte (408 when it runs out); also how
    /// long a connection that sends nothing at all is kept.
    public var headerTimeout = 10.0
    /// Seconds a keep-alive connection may sit between requests.
    public var idleTimeout = 60.0
    /// Seconds a client has to send a request body once its head arrived.
    public var bodyTimeout = 30.0
    /// Seconds queued output may go without the client accepting a byte of it; then the connection is reset, in
    /// any state (as nginx's `send_timeout`).
    public var sendTimeout = 60.0
    /// Connections held at once; beyond this, accepting pauses until one closes.
    public var maxConnections = 10_000
    /// From this share of `maxConnections` on, idle keep-alive connections are closed oldest first to make room
    /// (1 or more: never).
    public var idleEvictionShare = 0.9
    /// The `Server` header.
    public var serverName = "poetry-gateway"
    /// Request bytes held for later pipelined requests before reading pauses.
    public var maxPipelinedBytes = 64 * 1024
    /// Above this many bytes of answers queued for a client, its connection reads nothing and takes no request
    /// (and a stream is told the client is not keeping up); at or below the low mark both resume.
    public var outputHighWatermark = 64 * 1024
    public var outputLowWatermark = 16 * 1024

    public init() {}

    /// What each connection's state machine is given.
    var connectionConfig: HTTPConnectionConfig {
        var config = HTTPConnectionConfig()
        config.limits = limits
        config.headerTimeout = MonotonicClock.nanoseconds(fromSeconds: headerTimeout)
        config.idleTimeout = MonotonicClock.nanoseconds(fromSeconds: idleTimeout)
        config.bodyTimeout = MonotonicClock.nanoseconds(fromSeconds: bodyTimeout)
        config.sendTimeout = MonotonicClock.nanoseconds(fromSeconds: sendTimeout)
        config.maxPipelinedBytes = maxPipelinedBytes
        config.highWatermark = outputHighWatermark
        config.lowWatermark = outputLowWatermark
        return config
    }
}
