/// An `Accept` header as RFC 9110 §12.5.1 reads it: media ranges with weights. A type's quality comes from the
/// most specific range that matches it (`text/event-stream` over `text/*` over `*/*`); q=0 means "not this".
struct AcceptHeader {
    private struct Range {
        let type: Substring
        let subtype: Substring
        let quality: Double
    }

    private let ranges: [Range]

    /// Elements that are not media ranges are skipped (they can match nothing); a bare `*`, which some old
    /// clients send, counts as `*/*`. A weight that is not a number from 0 to 1 is refused, naming it.
    init(_ text: String) throws(GatewayError) {
        var ranges: [Range] = []
        for element in text.split(separator: ",") {
            let parts = element.split(separator: ";").map { $0.trimmingCharacters(in: " \t") }
            guard let mediaRange = parts.first?.lowercased(), !mediaRange.isEmpty else { continue }
            var quality = 1.0
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: " \t") }
                guard pair.count == 2, pair[0].lowercased() == "q" else { continue }
                guard let value = Double(pair[1]), (0...1).contains(value) else {
                    throw .badRequest("bad Accept header: q=\(pair[1]) in '\(mediaRange)' is not a number from 0 to 1")
                }
                quality = value
            }
            let halves = mediaRange == "*" ? ["*", "*"] : mediaRange.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard halves.count == 2, !halves[0].isEmpty, !halves[1].isEmpty else { continue }
            ranges.append(Range(type: Substring(halves[0]), subtype: Substring(halves[1]), quality: quality))
        }
        self.ranges = ranges
    }

    /// How acceptable `mediaType` (`type/subtype`, lowercase) is, and how specific the range that said so was
    /// (2 exact, 1 `type/*`, 0 `*/*`); nil when no range matches.
    func quality(of mediaType: String) -> (quality: Double, specificity: Int)? {
        let halves = mediaType.split(separator: "/")
        var best: (quality: Double, specificity: Int)?
        for range in ranges {
            let specificity: Int
            if range.type == halves[0] && range.subtype == halves[1] {
                specificity = 2
            } else if range.type == halves[0] && range.subtype == "*" {
                specificity = 1
            } else if range.type == "*" && range.subtype == "*" {
                specificity = 0
            } else {
                continue
            }
            if best == nil || specificity > best!.specificity { best = (range.quality, specificity) }
        }
        return best
    }
}

private extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}
