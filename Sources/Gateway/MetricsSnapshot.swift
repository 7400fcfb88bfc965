import HTTPServer
import Poetry
import Reactor

/// One reactor thread's figures at a moment, taken on that thread; the threads' snapshots are summed for /metrics
/// and /api/reactor, so counting never needs a lock or an atomic on the request path.
struct MetricsSnapshot: Sendable {
    /// Non-zero request counts by their index in `Metrics`' table.
    var requests: [Int: Int] = [:]
    var activeFetches = 0
    var poetryBytesReceived = 0
    var fetchesStarted = 0
    var fetchesCancelled = 0
    var eventDelay = LatencyHistogram()
    var http = HTTPServerStats()
    var reactor = ReactorStats()

    /// Adds another thread's figures to these.
    mutating func add(_ other: MetricsSnapshot) {
        requests.merge(other.requests, uniquingKeysWith: +)
        activeFetches += other.activeFetches
        poetryBytesReceived += other.poetryBytesReceived
        fetchesStarted += other.fetchesStarted
        fetchesCancelled += other.fetchesCancelled
        eventDelay.merge(other.eventDelay)
        http.add(other.http)
        reactor.add(other.reactor)
    }
}
