import Poetry
import Testing

@Suite("Lateness figures")
struct LatencyHistogramTests {
    /// A bucket's upper edge is not a lateness anyone saw: p99 of small latenesses must not exceed the worst.
    @Test func percentilesNeverExceedTheWorstAndTheSumAddsUp() {
        var histogram = LatencyHistogram()
        for nanoseconds: UInt64 in [10_000, 20_000, 30_000] { histogram.record(nanoseconds: nanoseconds) }
        #expect(histogram.percentile(0.99) <= Double(histogram.worst) / 1e9)
        #expect(histogram.percentile(0.5) <= Double(histogram.worst) / 1e9)
        #expect(histogram.totalNanoseconds == 60_000)
        var merged = LatencyHistogram()
        merged.merge(histogram)
        #expect(merged.totalNanoseconds == 60_000)
        #expect(merged.count == 3)
    }
}
