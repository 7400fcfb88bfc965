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
        http.connectionsAccepted += other.http.connectionsAccepted
        http.connectionsRefused += other.http.connectionsRefused
        http.openConnections += other.http.openConnections
        http.requests += other.http.requests
        http.rejectedRequests += other.http.rejectedRequests
        http.timeouts += other.http.timeouts
        http.sendTimeouts += other.http.sendTimeouts
        http.idleConnectionsEvicted += other.http.idleConnectionsEvicted
        reactor.iterations += other.reactor.iterations
        reactor.eventsDispatched += other.reactor.eventsDispatched
        reactor.timersFired += other.reactor.timersFired
        reactor.crossThreadCalls += other.reactor.crossThreadCalls
        reactor.blockedNanoseconds += other.reactor.blockedNanoseconds
        reactor.busyNanoseconds += other.reactor.busyNanoseconds
        reactor.registeredDescriptors += other.reactor.registeredDescriptors
    }
}
