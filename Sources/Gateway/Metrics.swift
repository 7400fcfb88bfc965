import HTTP1
import HTTPServer
import Poetry
import Reactor

/// What /metrics reports, kept on one reactor thread (each thread has its own; `snapshot` hands them to be summed).
final class Metrics {
    // Unchecked exclusivity for the two arrays every request touches (countRequest): confined to the reactor
    // thread, never accessed in overlapping ways, and the runtime check measured at about 115 of ~7,000 user-space
    // instructions per keep-alive request (callgrind, issue 15). The rest of the metrics stay checked.

    /// Counts by route, request method and status, in a flat table: counting a request is one increment, no
    /// hashing. Row `(route + 1) * methods + method`, column `status - 100`; route -1 is static files and unknown
    /// paths, `routeNames.count` the server's own refusals of what it could not parse (no route, no method).
    @exclusivity(unchecked) private var requests: [Int] = []
    private static let statuses = 500
    /// The request methods counted apart; anything else is "other".
    static let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"]
    /// Route patterns by index, for the labels; setting them sizes the table.
    @exclusivity(unchecked) var routeNames: [String] = [] {
        didSet { requests = [Int](repeating: 0, count: (routeNames.count + 2) * Self.methods.count * Self.statuses) }
    }
    /// Fetches running now; each is one stream, so this is also the streams figure (`poetry_streams_active`).
    var activeFetches = 0
    var poetryBytesReceived = 0
    var fetchesStarted = 0
    var fetchesCancelled = 0
    /// From an event's moment (data arriving from a poetry server) to its chunk being written to the caller.
    var eventDelay = LatencyHistogram()

    /// The response writer's tag for a request to route `route` (-1: static files and unknown paths) with
    /// `method`. A writer left at -1 is one of the server's own refusals, counted as "unparsed".
    func tag(route: Int, method: String) -> Int {
        let methodIndex = Self.methods.firstIndex(of: method) ?? Self.methods.count - 1
        return (route + 1) * Self.methods.count + methodIndex
    }

    func countRequest(tag: Int, status: Int) {
        guard (100..<100 + Self.statuses).contains(status) else { return }
        let rows = (routeNames.count + 2) * Self.methods.count
        let row = tag >= 0 && tag < rows ? tag : (routeNames.count + 1) * Self.methods.count + Self.methods.count - 1
        requests[row * Self.statuses + status - 100] += 1
    }

    /// This thread's figures now, with the server's and reactor's counters beside them.
    func snapshot(http: HTTPServerStats, reactor: ReactorStats) -> MetricsSnapshot {
        var counts: [Int: Int] = [:]
        for index in requests.indices where requests[index] > 0 { counts[index] = requests[index] }
        return MetricsSnapshot(requests: counts, activeFetches: activeFetches, poetryBytesReceived: poetryBytesReceived,
                               fetchesStarted: fetchesStarted, fetchesCancelled: fetchesCancelled, eventDelay: eventDelay,
                               http: http, reactor: reactor)
    }

    /// The non-zero counts as their labels and count, ordered by route, method, then status.
    private func requestCounts(_ counts: [Int: Int]) -> [(labels: String, count: Int)] {
        counts.keys.sorted().map { index in
            let row = index / Self.statuses
            let route = row / Self.methods.count - 1
            let unparsed = route == routeNames.count
            let routeLabel = route < 0 ? "static" : unparsed ? "unparsed" : routeNames[route]
            let method = unparsed ? "unknown" : Self.methods[row % Self.methods.count]
            return ("{route=\"\(routeLabel)\",method=\"\(method)\",status=\"\(index % Self.statuses + 100)\"}", counts[index]!)
        }
    }

    /// Prometheus text exposition format 0.0.4, or OpenMetrics 1.0 (what Prometheus asks for first): the same
    /// samples, but a counter's family is named without `_total` and the text ends with `# EOF`.
    func render(_ figures: MetricsSnapshot, serversRunning: Int, threads: Int, openMetrics: Bool = false) -> String {
        let http = figures.http, reactor = figures.reactor
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            let family = openMetrics && type == "counter" && name.hasSuffix("_total") ? String(name.dropLast(6)) : name
            out += "# HELP \(family) \(help)\n# TYPE \(family) \(type)\n"
            for sample in samples { out += "\(name)\(sample.labels) \(sample.value)\n" }
        }
        metric("poetry_http_requests_total", "counter",
               "HTTP requests answered, by route, method and status (route \"unparsed\": refused before routing, e.g. 414).",
               requestCounts(figures.requests).map { (labels: $0.labels, value: String($0.count)) })
        metric("poetry_http_rejected_requests_total", "counter", "Requests refused by the parser (malformed, too large) or timed out.",
               [("", String(http.rejectedRequests + http.timeouts))])
        metric("poetry_http_send_timeouts_total", "counter",
               "HTTP connections reset because the client accepted none of its pending answer for the send timeout.",
               [("", String(http.sendTimeouts))])
        metric("poetry_http_idle_connections_evicted_total", "counter",
               "Idle keep-alive connections closed to make room at 90% of the connection cap.",
               [("", String(http.idleConnectionsEvicted))])
        metric("poetry_http_open_connections", "gauge", "HTTP connections open now.", [("", String(http.openConnections))])
        metric("poetry_http_connections_total", "counter", "HTTP connections accepted.", [("", String(http.connectionsAccepted))])
        metric("poetry_http_connections_refused_total", "counter", "HTTP connections closed at once: the reactor could not watch them.",
               [("", String(http.connectionsRefused))])
        metric("poetry_fetches_active", "gauge", "Fetches running now.", [("", String(figures.activeFetches))])
        metric("poetry_fetches_total", "counter", "Fetches started.", [("", String(figures.fetchesStarted))])
        metric("poetry_fetches_cancelled_total", "counter", "Fetches cancelled because the caller hung up.", [("", String(figures.fetchesCancelled))])
        metric("poetry_streams_active", "gauge", "Fetch streams open now.", [("", String(figures.activeFetches))])
        metric("poetry_servers_running", "gauge", "Slow poetry servers running now.", [("", String(serversRunning))])
        metric("poetry_bytes_received_total", "counter", "Poetry bytes received by fetches.", [("", String(figures.poetryBytesReceived))])
        metric("poetry_stream_event_delay_seconds", "summary", "From poetry bytes arriving to their event leaving the gateway.",
               [("{quantile=\"0.5\"}", JSON.double(figures.eventDelay.percentile(0.5)).text),
                ("{quantile=\"0.99\"}", JSON.double(figures.eventDelay.percentile(0.99)).text),
                ("_sum", JSON.double(Double(figures.eventDelay.totalNanoseconds) / 1e9).text),
                ("_count", String(figures.eventDelay.count))])
        metric("poetry_reactor_threads", "gauge", "Reactor threads serving the gateway's port (--threads); the reactor figures are their sums.",
               [("", String(threads))])
        metric("poetry_reactor_iterations_total", "counter", "Reactor loop iterations (wake-ups).", [("", String(reactor.iterations))])
        metric("poetry_reactor_events_total", "counter", "Ready events dispatched by the reactor.", [("", String(reactor.eventsDispatched))])
        metric("poetry_reactor_blocked_seconds_total", "counter", "Seconds the reactor spent waiting in select/poll/epoll.",
               [("", JSON.double(MonotonicClock.seconds(fromNanoseconds: reactor.blockedNanoseconds)).text)])
        metric("poetry_reactor_busy_seconds_total", "counter", "Seconds the reactor spent running handlers and timers.",
               [("", JSON.double(MonotonicClock.seconds(fromNanoseconds: reactor.busyNanoseconds)).text)])
        metric("poetry_reactor_descriptors", "gauge", "Descriptors registered with the reactor.", [("", String(reactor.registeredDescriptors))])
        if openMetrics { out += "# EOF\n" }
        return out
    }
}
