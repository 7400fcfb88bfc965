/// A latency distribution: 0.1 ms buckets up to 1 s, so recording costs one increment. Used for how late a paced
/// server's sends were, and for how long fetch events waited before leaving the gateway.
public struct LatencyHistogram: Sendable {
    private var buckets = [Int](repeating: 0, count: 10_001)
    public private(set) var count = 0
    public private(set) var worst: UInt64 = 0
    /// Every recorded lateness added up (a summary's `_sum`).
    public private(set) var totalNanoseconds: UInt64 = 0

    public init() {}

    public mutating func record(nanoseconds lateness: UInt64) {
        count += 1
        worst = max(worst, lateness)
        totalNanoseconds &+= lateness
        buckets[Int(min(lateness / 100_000, 10_000))] += 1
    }

    /// Adds another histogram's counts (e.g. from another reactor thread of the same server).
    public mutating func merge(_ other: LatencyHistogram) {
        for index in buckets.indices { buckets[index] += other.buckets[index] }
        count += other.count
        totalNanoseconds &+= other.totalNanoseconds
        worst = max(worst, other.worst)
    }

    /// The lateness below which `fraction` of sends fell, in seconds (to the bucket's upper edge, but never above
    /// the worst seen: the top bucket's edge can pass it).
    public func percentile(_ fraction: Double) -> Double {
        guard count > 0 else { return 0 }
        let target = Int((Double(count) * fraction).rounded(.up))
        var seen = 0
        var edge = Double(buckets.count) / 10_000
        for (index, value) in buckets.enumerated() {
            seen += value
            if seen >= target {
                edge = Double(index + 1) / 10_000
                break
            }
        }
        return min(edge, Double(worst) / 1e9)
    }

    public var summary: String {
        func ms(_ seconds: Double) -> String {
            let tenths = Int((seconds * 10_000).rounded())
            return "\(tenths / 10).\(tenths % 10)"
        }
        return "\(count) late by p50 \(ms(percentile(0.5))) ms, p90 \(ms(percentile(0.9))) ms, "
            + "p99 \(ms(percentile(0.99))) ms, worst \(ms(Double(worst) / 1e9)) ms"
    }
}
