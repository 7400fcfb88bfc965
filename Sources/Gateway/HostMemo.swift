#if canImport(Glibc)
import Glibc
#endif

/// The last `Host` value found to name this gateway. Keep-alive requests repeat their connection's Host, and most
/// connections send the same one, so one byte comparison stands in for the parse (`inet_pton`, the split, the
/// allow-list) on nearly every request. Whether a value is accepted depends on its bytes alone, so the memo is
/// always right. Used on the gateway's reactor thread only.
final class HostMemo {
    // Unchecked: confined to the reactor thread, and each access is a plain read or write with no call inside it;
    // the runtime check cost 57 instructions a request (callgrind, BENCHMARKS.md).
    @exclusivity(unchecked) private var approved: [UInt8] = []

    /// Whether `host` is the approved value; otherwise asks `check` and remembers a yes.
    func isAccepted(_ host: UnsafeBufferPointer<UInt8>, check: (UnsafeBufferPointer<UInt8>) -> Bool) -> Bool {
        if host.count == approved.count, host.count > 0,
           approved.withUnsafeBufferPointer({ memcmp($0.baseAddress!, host.baseAddress!, host.count) == 0 }) {
            return true
        }
        guard check(host) else { return false }
        approved = Array(host)
        return true
    }
}
