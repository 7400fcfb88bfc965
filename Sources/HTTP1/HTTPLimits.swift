/// Bounds on what a client may send. Every one is a flag of `poetry gateway`; the README lists the defaults.
public struct HTTPLimits: Sendable, Equatable {
    /// Longest request line (method, target, version); longer gets 414.
    public var maxRequestLineBytes = 8 * 1024
    /// Largest header section, request line included; larger gets 431.
    public var maxHeaderBytes = 32 * 1024
    /// Most header fields in one request (and trailer fields after a chunked body); more gets 431.
    public var maxHeaderCount = 256
    /// Largest request body, fixed or chunked; larger gets 413.
    public var maxBodyBytes = 1024 * 1024
    /// Longest chunk-size line, extensions included.
    public var maxChunkLineBytes = 4 * 1024

    public init() {}
}
