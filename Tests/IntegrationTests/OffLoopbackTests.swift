#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Reactor
import Testing

/// Runs `body` on a new thread inside a network namespace of its own (`unshare(CLONE_NEWNET)` affects only the
/// calling thread and the threads it starts), with its loopback interface up and nothing else: a gateway bound to
/// 0.0.0.0 there is "off loopback" to itself, yet nothing of this machine's network can reach it, and no test
/// ever listens on or sends to an address of the machine outside its loopback.
func inOwnNetworkNamespace<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
    let outcome = Locked<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    WorkerThread.start(name: "netns-test") {
        outcome.withLock { $0 = Result { try enterNetworkNamespace(); return try body() } }
        done.signal()
    }
    done.wait()
    return try outcome.withLock { $0! }.get()
}

private func enterNetworkNamespace() throws {
    // Glibc declares unshare only under _GNU_SOURCE, which Swift's Glibc module does not see: look it up.
    typealias Unshare = @convention(c) (Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "unshare") else { throw TestFailure("no unshare in libc") }
    let unshare = unsafeBitCast(symbol, to: Unshare.self)
    let cloneNewNet: Int32 = 0x4000_0000  // CLONE_NEWNET
    guard unshare(cloneNewNet) == 0 else { throw TestFailure("unshare(CLONE_NEWNET): \(String(cString: strerror(errno))) (needs root)") }
    // Before anything listens on 0.0.0.0: this thread must see no interface but its own loopback.
    guard let interfaces = if_nameindex() else { throw TestFailure("if_nameindex: \(String(cString: strerror(errno)))") }
    defer { if_freenameindex(interfaces) }
    var index = 0
    while let name = interfaces[index].if_name {
        guard String(cString: name) == "lo" else { throw TestFailure("interface \(String(cString: name)) in the test's namespace") }
        index += 1
    }
    // A new namespace's loopback is down: bring it up.
    let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var request = ifreq()
    withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { name in
        for (index, byte) in "lo".utf8.enumerated() { name[index] = byte }
    }
    guard ioctl(fd, UInt(SIOCGIFFLAGS), &request) == 0 else { throw TestFailure("SIOCGIFFLAGS: \(String(cString: strerror(errno)))") }
    request.ifr_ifru.ifru_flags |= Int16(IFF_UP)
    guard ioctl(fd, UInt(SIOCSIFFLAGS), &request) == 0 else { throw TestFailure("SIOCSIFFLAGS: \(String(cString: strerror(errno)))") }
}

@Suite("Off loopback: the token guards every API request (inside a network namespace of the test's own)")
struct OffLoopbackTests {
    /// What was asked (path and headers) and what came back, gathered in the namespace and checked here, on the
    /// test's own thread.
    struct Exchange: Sendable {
        let label: String
        let response: CurlResponse
    }

    private static func exchanges(metricsPublic: Bool, _ requests: [(path: String, headers: [String])]) throws -> [Exchange] {
        try inOwnNetworkNamespace {
            let gateway = try TestGateway {
                $0.host = "0.0.0.0"
                $0.token = "netns-secret"
                $0.metricsPublic = metricsPublic
            }
            defer { gateway.stop() }
            return requests.map { Exchange(label: "\($0.path) \($0.headers)", response: CurlClient().request("\(gateway.url)\($0.path)", headers: $0.headers)) }
        }
    }

    @Test func aFetchWithoutTheTokenIs401AndTheTokenLetsItThrough() throws {
        let guarded = ["/api/fetch?targets=1&format=ndjson", "/api/poems", "/api/servers", "/api/reactor", "/metrics"]
        let token = ["Authorization: Bearer netns-secret"]
        var requests: [(path: String, headers: [String])] = []
        for path in guarded {
            for headers in [[], ["Authorization: Bearer wrong"], token] { requests.append((path, headers)) }
        }
        // The page and its health check stay open: the page asks for the token itself.
        requests += [("/", []), ("/healthz", [])]
        let results = try Self.exchanges(metricsPublic: false, requests)
        #expect(results.count == requests.count)
        for (request, result) in zip(requests, results) {
            let response = result.response
            if guarded.contains(request.path) && request.headers != token {
                #expect(response.status == 401, "\(result.label) → \(response.status) \(response.text)")
                #expect(response.header("WWW-Authenticate") == #"Bearer realm="poetry-gateway""#, "\(result.label)")
            } else {
                #expect(response.status == 200, "\(result.label) → \(response.status) \(response.text)")
            }
            if request.path.hasPrefix("/api/fetch") && request.headers == token {
                #expect(response.text.contains(#""event":"summary""#))
            }
        }
    }

    @Test func metricsPublicOpensOnlyMetrics() throws {
        let results = try Self.exchanges(metricsPublic: true, [("/metrics", []), ("/api/poems", [])])
        #expect(results.map(\.response.status) == [200, 401])
    }
}
