import Foundation
import Testing

/// /metrics as Prometheus reads it: parsed by prometheus_client (the Python reference parsers, installed by
/// scripts/test.sh), both the classic text format and OpenMetrics, after requests whose series used to collide.
@Suite("/metrics through a real Prometheus parser")
struct MetricsParseTests {
    @Test func everySeriesIsUniqueAndTheSummaryIsComplete() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let client = CurlClient()
        // Same route and status, different methods: one series each.
        #expect(client.request("\(gateway.url)/api/servers/99").status == 404)
        #expect(client.request("DELETE", "\(gateway.url)/api/servers/99").status == 404)
        #expect(client.request("HEAD", "\(gateway.url)/api/servers/99").status == 404)
        // A request line past the limit is refused before any route: not a static file's 404.
        let long = String(repeating: "1", count: 9000)
        #expect(client.request("\(gateway.url)/api/fetch?targets=\(long)").status == 414)
        // A fetch, so the event-delay summary has observations.
        let server = try gateway.startServer("science", numBytes: 500, delay: 0.001)
        let port = try #require(server["port"] as? Int)
        #expect(client.request("\(gateway.url)/api/fetch?targets=\(port)&format=ndjson").status == 200)

        let classic = client.request("\(gateway.url)/metrics")
        let openMetrics = client.request("GET", "\(gateway.url)/metrics", headers: ["Accept: application/openmetrics-text; version=1.0.0,text/plain;q=0.5"])
        #expect(openMetrics.header("Content-Type")?.hasPrefix("application/openmetrics-text; version=1.0.0") == true)
        let classicSamples = try Self.parse(classic.text, format: "text")
        let openMetricsSamples = try Self.parse(openMetrics.text, format: "openmetrics")

        for samples in [classicSamples, openMetricsSamples] {
            let requests = samples.filter { $0.name == "poetry_http_requests_total" }
            func count(_ route: String, _ method: String, _ status: String) -> Double? {
                requests.first { $0.labels == ["route": route, "method": method, "status": status] }?.value
            }
            #expect(count("/api/servers/{id}", "GET", "404") == 1)
            #expect(count("/api/servers/{id}", "DELETE", "404") == 1)
            #expect(count("/api/servers/{id}", "HEAD", "404") == 1)
            #expect(count("unparsed", "unknown", "414") == 1)
            #expect(!requests.contains { $0.labels["route"] == "static" && $0.labels["status"] == "414" })
            let delayCount = try #require(samples.first { $0.name == "poetry_stream_event_delay_seconds_count" }?.value)
            let delaySum = try #require(samples.first { $0.name == "poetry_stream_event_delay_seconds_sum" }?.value)
            #expect(delayCount > 0)
            #expect(delaySum >= 0)
        }
    }

    struct Sample: Decodable {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    /// Parses exposition text with prometheus_client and returns every sample; throws what the parser said when
    /// it refuses the text. The classic parser tolerates a repeated series (Prometheus drops one when scraping),
    /// so the script refuses one itself.
    static func parse(_ text: String, format: String) throws -> [Sample] {
        let script = """
            import json, sys
            try:
                from prometheus_client.parser import text_string_to_metric_families as classic
                from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics
            except ImportError:
                sys.exit("prometheus_client is missing: scripts/test.sh installs it (python3 -m pip install prometheus_client)")
            text = sys.stdin.read()
            parse = openmetrics if sys.argv[1] == "openmetrics" else classic
            try:
                samples = [s for family in parse(text) for s in family.samples]
            except Exception as error:
                sys.exit("the parser refused /metrics: %s" % error)
            seen = set()
            for s in samples:
                key = (s.name, tuple(sorted(s.labels.items())))
                if key in seen:
                    sys.exit("repeated series: %s %s" % key)
                seen.add(key)
            json.dump([{"name": s.name, "labels": s.labels, "value": s.value} for s in samples], sys.stdout)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, format]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        (process.standardInput, process.standardOutput, process.standardError) = (input, output, errors)
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("\(format): \(message)") }
        return try JSONDecoder().decode([Sample].self, from: data)
    }
}
