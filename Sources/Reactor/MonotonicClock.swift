#if canImport(Glibc)
import Glibc
#endif
import CReactor

/// Nanoseconds on CLOCK_MONOTONIC: immune to wall-clock jumps, so timers and durations never go backwards.
public enum MonotonicClock {
    @inline(__always)
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Seconds (a Double, as the CLI and the API take them) to nanoseconds, clamped at zero.
    @inline(__always)
    public static func nanoseconds(fromSeconds seconds: Double) -> UInt64 {
        seconds <= 0 ? 0 : UInt64(seconds * 1_000_000_000)
    }

    @inline(__always)
    public static func seconds(fromNanoseconds ns: UInt64) -> Double {
        Double(ns) / 1_000_000_000
    }
}
