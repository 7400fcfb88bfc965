/// A time source for a reactor, in monotonic nanoseconds. A reactor made without one reads `MonotonicClock`; a test
/// gives one that moves only when the test moves it (a manual clock), so timers and every deadline read from the
/// reactor (`now`, `wokeAt`) are tested without sleeping.
public protocol ReactorClock: AnyObject {
    func now() -> UInt64
}
