/// What one connection's state machine needs to know: the request limits, its timeouts in nanoseconds and the
/// output marks between which reading pauses and resumes.
public struct HTTPConnectionConfig: Sendable, Equatable {
    public var limits = HTTPLimits()
    /// From a request's first byte to the end of its head; also how long a connection that has sent nothing lives.
    public var headerTimeout: UInt64 = 10_000_000_000
    /// Between keep-alive requests.
    public var idleTimeout: UInt64 = 60_000_000_000
    /// From a head to the end of its body.
    public var bodyTimeout: UInt64 = 30_000_000_000
    /// How long queued output may go without a byte accepted by the client before the connection is reset.
    public var sendTimeout: UInt64 = 60_000_000_000
    /// After sending FIN, how long to wait for the client's.
    public var lingerTimeout: UInt64 = 2_000_000_000
    /// Above this many queued output bytes the connection stops reading and takes no new request.
    public var highWatermark = 64 * 1024
    /// At or below this many it reads and takes requests again.
    public var lowWatermark = 16 * 1024
    /// Request bytes held for later pipelined requests while one is answered, before reading pauses.
    public var maxPipelinedBytes = 64 * 1024

    public init() {}
}
