import Synchronization

/// Where a blocking poetry server is in its life. In an atomic because `stop()` comes from another thread (the
/// gateway's DELETE, a signal); moved only through `next(on:)`, whose table is the whole lifecycle.
///
///     bound ──run──▶ serving ──stop──▶ stopped
///       └──────────────stop──────────────▲   (a stop before run is kept: that run returns at once)
enum BlockingServerLifecycle: UInt8, AtomicRepresentable {
    case bound
    case serving
    case stopped

    enum Event {
        case run
        case stop
    }

    /// The state after `event`; nil for a pair that is a bug (a second `run` while serving).
    func next(on event: Event) -> BlockingServerLifecycle? {
        switch (self, event) {
        case (.bound, .run): return .serving
        case (.stopped, .run): return .stopped  // stopped before it ran: the run returns at once
        case (.serving, .run): return nil
        case (_, .stop): return .stopped
        }
    }
}
