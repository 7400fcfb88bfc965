import HTTP1
import HTTPServer
import Reactor

/// Everything `poetry gateway` can be told. Each field is a command-line flag; defaults are the README's.
public struct GatewayConfig: Sendable {
    public var host = "127.0.0.1"
    public var port: UInt16 = 8080
    public var backend = BackendKind.default
    public var poetryDirectory = "./poetry"
    public var publicDirectory = "./public"
    /// Also start the seed's three servers.
    public var demo = false
    /// Let fetches reach addresses outside loopback (off: the gateway must not become a port scanner).
    public var allowRemoteTargets = false
    /// Let started servers bind outside loopback.
    public var allowRemoteServers = false
    /// Required as `Authorization: Bearer …` on mutating requests; mandatory when bound outside loopback.
    public var token: String?
    /// Most poetry servers running at once.
    public var maxServers = 64
    /// Most targets in one fetch.
    public var maxTargets = 1000
    /// Most fetch streams open at once.
    public var maxStreams = 20_000
    /// Most blocking fetches at once: each holds a thread, as the seed's blocking client would.
    public var maxBlockingFetches = 64
    /// Seconds a fetch task may go without connecting or receiving before it fails (`timeout=` overrides).
    public var fetchTimeout = 10.0
    public var http = HTTPServerConfig()

    public init() {}

    /// Whether the gateway listens only on this machine.
    public var isLoopbackOnly: Bool {
        host == "localhost" || ((try? SocketAddress(host: host, port: 0))?.isLoopback ?? false)
    }
}
