import HTTP1
import HTTPServer
import Poetry
import Reactor

/// What /metrics reports, kept on the reactor thread.
final class Metrics {
    // Unchecked exclusivity for the two arrays every request touches (countRequest): confined to the reactor
    // thread, never accessed in overlapping ways, and the runtime check measured at about 115 of ~7,000 user-space
    // instructions per keep-alive request (callgrind, issue 15). The rest of the metrics stay checked.

    /// Counts by route index (-1: static files and unknown paths) and status, in a flat table: counting a request
    /// is one increment, no hashing. Row `route + 1`, column `status - 100`.
    @exclusivity(unchecked) private var requests: [Int] = []
    private static let statuses = 500
    /// Route patterns by index, for the labels; setting them sizes the table.
    @exclusivity(unchecked) var routeNames: [String] = [] {
        didSet { requests = [Int](repeating: 0, count: (routeNames.count + 1) * Self.statuses) }
    }
    /// Fetches running now; each is one stream, so this is also the streams figure (`poetry_streams_active`).
    var activeFetches = 0
    var poetryBytesReceived = 0
    var fetchesStarted = 0
    var fetchesCancelled = 0
    /// From an event's moment (data arriving from a poetry server) to its chunk being written to the caller.
    var eventDelay = LatencyHistogram()

    func countRequest(route: Int, status: Int) {
        let row = route >= 0 && route < routeNames.count ? route + 1 : 0
        guard (100..<100 + Self.statuses).contains(status) else { return }
        requests[row * Self.statuses + status - 100] += 1
    }

    /// The non-zero counts as ((route label, status), count), ordered by route then status.
    private var requestCounts: [((route: String, status: Int), Int)] {
        requests.indices.filter { requests[$0] > 0 }.map { index in
            let row = index / Self.statuses
            return ((row == 0 ? "static" : routeNames[row - 1], index % Self.statuses + 100), requests[index])
        }
    }

    /// Prometheus text exposition format, version 0.0.4.
    func render(http: HTTPServerStats, reactor: ReactorStats, serversRunning: Int) -> String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for sample in samples { out += "\(name)\(sample.labels) \(sample.value)\n" }
        }
        let requestSamples = requestCounts
            .sorted { ($0.0.route, $0.0.status) < ($1.0.route, $1.0.status) }
            .map { (labels: "{route=\"\($0.0.route)\",status=\"\($0.0.status)\"}", value: String($0.1)) }
        metric("poetry_http_requests_total", "counter", "HTTP requests answered, by route and status.", requestSamples)
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
        metric("poetry_fetches_active", "gauge", "Fetches running now.", [("", String(activeFetches))])
        metric("poetry_fetches_total", "counter", "Fetches started.", [("", String(fetchesStarted))])
        metric("poetry_fetches_cancelled_total", "counter", "Fetches cancelled because the caller hung up.", [("", String(fetchesCancelled))])
        metric("poetry_streams_active", "gauge", "Fetch streams open now.", [("", String(activeFetches))])
        metric("poetry_servers_running", "gauge", "Slow poetry servers running now.", [("", String(serversRunning))])
        metric("poetry_bytes_received_total", "counter", "Poetry bytes received by fetches.", [("", String(poetryBytesReceived))])
        metric("poetry_stream_event_delay_seconds", "summary", "From poetry bytes arriving to their event leaving the gateway.",
               [("{quantile=\"0.5\"}", JSON.double(eventDelay.percentile(0.5)).text),
                ("{quantile=\"0.99\"}", JSON.double(eventDelay.percentile(0.99)).text),
                ("_count", String(eventDelay.count))])
        metric("poetry_reactor_iterations_total", "counter", "Reactor loop iterations (wake-ups).", [("", String(reactor.iterations))])
        metric("poetry_reactor_events_total", "counter", "Ready events dispatched by the reactor.", [("", String(reactor.eventsDispatched))])
        metric("poetry_reactor_blocked_seconds_total", "counter", "Seconds the reactor spent waiting in select/poll/epoll.",
               [("", JSON.double(MonotonicClock.seconds(fromNanoseconds: reactor.blockedNanoseconds)).text)])
        metric("poetry_reactor_busy_seconds_total", "counter", "Seconds the reactor spent running handlers and timers.",
               [("", JSON.double(MonotonicClock.seconds(fromNanoseconds: reactor.busyNanoseconds)).text)])
        metric("poetry_reactor_descriptors", "gauge", "Descriptors registered with the reactor.", [("", String(reactor.registeredDescriptors))])
        return out
    }
}
