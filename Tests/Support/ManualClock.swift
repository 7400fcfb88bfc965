/// Time that moves only when a test moves it, in monotonic nanoseconds (as the reactor's clock counts).
public final class ManualClock {
    public private(set) var now: UInt64

    /// Starts well away from zero, since 0 means "no deadline" to the code under test.
    public init(start: UInt64 = 1_000_000_000_000) {
        now = start
    }

    public func advance(seconds: Double) {
        now += UInt64(seconds * 1_000_000_000)
    }

    public func advance(to time: UInt64) {
        precondition(time >= now, "a monotonic clock never goes back")
        now = time
    }
}
