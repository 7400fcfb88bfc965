/// Lets a warning that can repeat many times a second through at most once per interval, counting the
/// occurrences it held back, so a flood (descriptors exhausted, connections refused) says so without flooding the
/// log.
public struct LogThrottle {
    private let interval: UInt64
    private var lastLogged: UInt64?
    private var heldBack = 0

    public init(seconds: Double = 1) {
        interval = MonotonicClock.nanoseconds(fromSeconds: seconds)
    }

    /// Call once per occurrence with the monotonic time. Returns how many occurrences a line logged now stands
    /// for (this one and those held back since the last), or nil to stay quiet.
    public mutating func admit(now: UInt64) -> Int? {
        heldBack += 1
        if let lastLogged, now &- lastLogged < interval { return nil }
        lastLogged = now
        defer { heldBack = 0 }
        return heldBack
    }
}
