#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import Gateway
import Reactor
import Synchronization
import TestSupport

/// A gateway running on its own threads, on a free port, serving this project's poems and page: two reactor
/// threads unless a test says otherwise, so every gateway test also checks that requests behave the same
/// whichever thread the kernel hands their connection to.
/// @unchecked Sendable: the gateway is reached only on its reactor's thread (`sync`, `execute`); the rest is set once.
final class TestGateway: @unchecked Sendable {
    let port: UInt16
    private let gateway: Confined<Gateway>
    private let loop: BackgroundReactor

    init(configure: (inout GatewayConfig) -> Void = { _ in }) throws {
        var config = GatewayConfig()
        config.port = 0
        config.poetryDirectory = "\(projectRoot)/poetry"
        config.publicDirectory = "\(projectRoot)/public"
        config.threads = 2
        configure(&config)
        let gateway = try Gateway(config: config)
        self.gateway = Confined(value: gateway)
        port = gateway.port
        let box = self.gateway
        loop = BackgroundReactor(reactor: gateway.reactor, name: "test-gateway") { try box.value.run(handleSignals: false) }
    }

    var url: String { "http://127.0.0.1:\(port)" }
    var reactor: Reactor { gateway.value.reactor }
    var routePatterns: [(method: String, pattern: String)] {
        let box = gateway
        return (try? sync { box.value.router.routes.map { ($0.method, $0.pattern) } }) ?? []
    }

    func sync<T: Sendable>(_ work: @escaping @Sendable () -> T) throws -> T {
        try loop.sync(work)
    }

    /// `work`'s result on each reactor thread of the gateway, in thread order: run there, as everything of a
    /// thread's must be.
    func onEachThread<T: Sendable>(_ work: @escaping @Sendable (GatewayWorker) -> T) -> [T] {
        let box = gateway
        return gateway.value.workers.indices.map { index in
            let result = Locked<T?>(nil)
            let ready = DispatchSemaphore(value: 0)
            box.value.workers[index].reactor.execute {
                result.withLock { $0 = work(box.value.workers[index]) }
                ready.signal()
            }
            ready.wait()
            return result.withLock { $0! }
        }
    }

    /// The orderly shutdown SIGTERM triggers; returns once the loop has stopped.
    func shutdown() {
        let box = gateway
        reactor.execute { box.value.shutdown() }
        waitUntilStopped()
    }

    var isStopped: Bool { loop.isStopped }

    func waitUntilStopped(limit: Double = 5) {
        loop.waitUntilStopped(limit: limit)
    }

    func stop() {
        loop.stop()
    }

    /// Starts a server through the API and returns its JSON.
    func startServer(_ poem: String, mode: String = "async", numBytes: Int = 10, delay: Double = 0.005) throws -> [String: Any] {
        let body = #"{"poem":"\#(poem)","mode":"\#(mode)","numBytes":\#(numBytes),"delay":\#(delay)}"#
        let response = CurlClient().request("POST", "\(url)/api/servers", headers: ["Content-Type: application/json"], body: Array(body.utf8))
        guard response.status == 201 else { throw TestFailure("POST /api/servers gave \(response.status): \(response.text)") }
        return try jsonObject(response.body)
    }

    /// A metric's value from /metrics.
    func metric(_ name: String) -> Double? {
        TestGatewayMetrics.value(name, url: url)
    }

    /// Waits (polling /metrics, at most about 5 s) until `name` reads `value`; whether it did.
    func waitUntil(metric name: String, is value: Double) -> Bool {
        for _ in 0..<500 {
            if metric(name) == value { return true }
            usleep(10_000)
        }
        return false
    }
}

/// A request made on a thread of its own, for a stream the test acts on while it runs; its response once it ends.
/// @unchecked Sendable: the response crosses threads only under its lock, and the semaphore orders the rest.
final class BackgroundRequest: @unchecked Sendable {
    private let response = Locked<CurlResponse?>(nil)
    private let finished = DispatchSemaphore(value: 0)

    init(_ url: String, timeout: Double = 20) {
        WorkerThread.start(name: "request") { [self] in
            let result = CurlClient().request(url, timeout: timeout)
            response.withLock { $0 = result }
            finished.signal()
        }
    }

    /// The response, once the request has ended (nil if it did not within `limit` seconds).
    func wait(limit: Double = 20) -> CurlResponse? {
        guard finished.wait(timeout: .now() + limit) == .success else { return nil }
        return response.withLock { $0 }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func jsonObject(_ bytes: [UInt8]) throws -> [String: Any] {
    guard let object = try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { throw TestFailure("not a JSON object") }
    return object
}

func jsonArray(_ bytes: [UInt8]) throws -> [[String: Any]] {
    guard let array = try JSONSerialization.jsonObject(with: Data(bytes)) as? [[String: Any]] else { throw TestFailure("not a JSON array") }
    return array
}

func ndjson(_ text: String) throws -> [[String: Any]] {
    try text.split(separator: "\n").map { try jsonObject(Array($0.utf8)) }
}
