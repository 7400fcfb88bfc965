import HTTP1
#if canImport(Glibc)
import Glibc
#endif

// @exclusivity(unchecked) marks hot-path state that is confined to the reactor thread and never accessed in
// overlapping ways (each access is a plain read or write with no call inside it), so the runtime exclusivity
// check, about a sixth of the server's user-space instructions per request (BENCHMARKS.md), guards nothing here.
final class HTTPDateCache {
    @exclusivity(unchecked) private var second: time_t = -1
    @exclusivity(unchecked) private var bytes: [UInt8] = []

    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Writes the current date's value (29 bytes).
    func write(to out: inout ByteCursor) {
        let now = time(nil)
        if now != second {
            second = now
            bytes = Array(Self.format(now).utf8)
        }
        bytes.withUnsafeBufferPointer { out.write($0) }
    }

    static func format(_ seconds: time_t) -> String {
        var t = seconds
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
