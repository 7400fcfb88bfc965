#if canImport(Glibc)
import Glibc
#endif
import Foundation
@testable import Gateway
import Reactor
import Synchronization

/// A gateway running on its own thread, on a free port, serving this project's poems and page.
final class TestGateway: @unchecked Sendable {
    let port: UInt16
    private let gateway: Confined<Gateway>
    private let finished = Atomic<Bool>(false)

    init(configure: (inout GatewayConfig) -> Void = { _ in }) throws {
        var config = GatewayConfig()
        config.port = 0
        config.poetryDirectory = "\(projectRoot)/poetry"
        config.publicDirectory = "\(projectRoot)/public"
        configure(&config)
        let gateway = try Gateway(config: config)
        self.gateway = Confined(value: gateway)
        port = gateway.port
        let box = self.gateway
        WorkerThread.start(name: "test-gateway") { [self] in
            try? box.value.run(handleSignals: false)
            finished.store(true, ordering: .releasing)
        }
    }

    var url: String { "http://127.0.0.1:\(port)" }
    var reactor: Reactor { gateway.value.reactor }
    var routePatterns: [(method: String, pattern: String)] {
        let box = gateway
        return (try? sync { box.value.router.routes.map { ($0.method, $0.pattern) } }) ?? []
    }

    func sync<T: Sendable>(_ work: @escaping @Sendable () -> T) throws -> T {
        let result = Locked<T?>(nil)
        let ready = DispatchSemaphore(value: 0)
        reactor.execute {
            let value = work()
            result.withLock { $0 = value }
            ready.signal()
        }
        ready.wait()
        return result.withLock { $0! }
    }

    /// The orderly shutdown SIGTERM triggers; returns once the loop has stopped.
    func shutdown() {
        let box = gateway
        reactor.execute { box.value.shutdown() }
        waitUntilStopped()
    }

    var isStopped: Bool { finished.load(ordering: .acquiring) }

    func waitUntilStopped(limit: Double = 5) {
        let end = MonotonicClock.now() + MonotonicClock.nanoseconds(fromSeconds: limit)
        while !isStopped && MonotonicClock.now() < end { usleep(1000) }
    }

    func stop() {
        reactor.stop()
        waitUntilStopped()
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
