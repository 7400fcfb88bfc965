import Reactor

/// Time that moves only when a test moves it, in monotonic nanoseconds. Given to a reactor (`Reactor(clock:)`), it
/// drives the reactor's timers and everything that reads `reactor.now` or `wokeAt`; given to a connection's state
/// machine through `ConnectionDriver`, its deadlines.
public final class ManualClock: ReactorClock {
    public private(set) var time: UInt64

    /// Starts well away from zero, since 0 means "no deadline" to the code under test.
    public init(start: UInt64 = 1_000_000_000_000) {
        time = start
    }

    public func now() -> UInt64 { time }

    public func advance(seconds: Double) {
        time += UInt64(seconds * 1_000_000_000)
    }

    public func advance(to later: UInt64) {
        precondition(later >= time, "a monotonic clock never goes back")
        time = later
    }
}
