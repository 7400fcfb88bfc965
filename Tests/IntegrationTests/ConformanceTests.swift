import Foundation
import Reactor
import TestSupport
import Testing

/// The HTTP/1.1 conformance and smuggling cases (the shared `h1probe` data, committed under
/// Resources/http1-conformance so a clone tests itself), sent as raw bytes to a gateway in this process and graded
/// as `h1probe.py --strict` grades them: every case must PASS.
@Suite("HTTP/1.1 conformance cases")
struct ConformanceTests {
    /// Cases in flight at once: each mostly waits for silence (ProbeExchange), so many overlap on few cores.
    static let parallelCases = 48

    /// On epoll, and on io_uring, whose receives come in the kernel's own pieces (the provided buffers) rather than
    /// one read per readiness event.
    @Test(arguments: [BackendKind.epoll, .ioUring])
    func everyCasePassesAsTheProbeGradesIt(backend: BackendKind) throws {
        let cases = try ConformanceCase.load()
        #expect(cases.count >= 202, "cases.json holds \(cases.count) cases")
        let gateway = try TestGateway { $0.backend = backend }
        defer { gateway.stop() }
        let port = gateway.port
        // The probe's own baseline: GET / answers 2xx and POST / answers without a protocol rejection.
        let baseline = ConformanceCase.baseline.map { ($0, ProbeExchange.run($0, port: port)) }
        for (probeCase, exchange) in baseline {
            let statuses = ProbeResponses.parse(exchange.data, methods: []).finals.map(\.status)
            let status = try #require(statuses.first, "baseline \(probeCase.id) got no response")
            #expect(!ConformanceCase.parseRejections.contains(status) && status < 500, "baseline \(probeCase.id) answered \(status)")
        }

        let results = Locked<[(ConformanceCase, ConformanceCase.Verdict, String)]>([])
        let next = Locked(0)
        let finished = DispatchSemaphore(value: 0)
        let workers = min(Self.parallelCases, cases.count)
        for worker in 0..<workers {
            WorkerThread.start(name: "conformance-\(worker)") {
                while true {
                    let index = next.withLock { value -> Int in
                        defer { value += 1 }
                        return value
                    }
                    guard index < cases.count else { break }
                    let (verdict, detail) = cases[index].grade(ProbeExchange.run(cases[index], port: port))
                    results.withLock { $0.append((cases[index], verdict, detail)) }
                }
                finished.signal()
            }
        }
        for _ in 0..<workers { finished.wait() }

        let graded = results.withLock { $0 }
        #expect(graded.count == cases.count)
        for (probeCase, verdict, detail) in graded.sorted(by: { $0.0.id < $1.0.id }) where verdict != .pass {
            Issue.record("\(backend): \(verdict.rawValue) \(probeCase.id) [\(probeCase.category)]: \(detail)")
        }
    }
}
