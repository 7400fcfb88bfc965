import HTTP1
import HTTPServer
import Poetry
import Reactor

/// Everything `poetry gateway` can be told. Each field is a command-line flag; defaults are the README's.
public struct GatewayConfig: Sendable {
    public var host = "127.0.0.1"
    public var port: UInt16 = 8080
    public var backend = BackendKind.default
    /// Reactor threads serving the port, each with its own listener (SO_REUSEPORT), connections and fetches.
    public var threads = 1
    public var poetryDirectory = "./poetry"
    public var publicDirectory = "./public"
    /// Also start the seed's three servers.
    public var demo = false
    /// Let fetches reach addresses outside loopback (off: the gateway must not become a port scanner).
    public var allowRemoteTargets = false
    /// Let started servers bind outside loopback.
    public var allowRemoteServers = false
    /// Required as `Authorization: Bearer …` on mutating requests, and off loopback on every `/api/` request (and
    /// `/metrics`); mandatory when bound outside loopback.
    public var token: String?
    /// Names besides the loopback ones and the bound address that Host and Origin may carry: a reverse proxy's
    /// public name, or `*.example.org`.
    public var allowedHosts: [String] = []
    /// Off loopback, serve `/metrics` without the token (for a scraper on the network).
    public var metricsPublic = false
    /// Most bytes one fetch task keeps; a target that sends more fails that task.
    public var maxPoemBytes = FetchLimits.defaultMaxPoemBytes
    /// Poem text all async fetches together may keep at once (beyond it, `done` events come without text).
    public var maxKeptPoemBytes = 16 * 1024 * 1024
    /// Seconds one fetch task may take in all, however steadily its target trickles.
    public var fetchDeadline = 120.0
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

    /// Where started servers bind by default: ::1 for a gateway on IPv6 loopback (its clients speak IPv6 there),
    /// else 127.0.0.1.
    public var serverInterface: String {
        guard let address = try? SocketAddress(host: host, port: 0), address.family == .ipv6, address.isLoopback else { return "127.0.0.1" }
        return "::1"
    }

    /// Whether the gateway listens only on this machine.
    public var isLoopbackOnly: Bool {
        host == "localhost" || ((try? SocketAddress(host: host, port: 0))?.isLoopback ?? false)
    }
}
