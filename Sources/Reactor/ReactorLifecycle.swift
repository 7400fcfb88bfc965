import Synchronization

/// Where a reactor is in its life. Kept in an atomic because `stop()` may come from any thread; moved only by
/// `next(on:)`, whose table is the whole lifecycle (after SwiftNIO's `SocketChannelLifecycleManager.moveState`).
///
///     idle ──run──▶ running ──stop──▶ stopping ──returned──▶ stopped ──run──▶ running …
///       └───────────────stop─────────────▲  (a stop before run is kept: that run returns at once)
enum ReactorLifecycle: UInt8, AtomicRepresentable {
    case idle
    case running
    case stopping
    case stopped

    enum Event {
        case run
        case stop
        case returned
    }

    /// The state after `event`, or nil for a pair that is a bug (running a reactor that is already running).
    func next(on event: Event) -> ReactorLifecycle? {
        switch (self, event) {
        case (.idle, .run), (.stopped, .run): return .running
        case (.stopping, .run): return .stopping
        case (.running, .run): return nil
        case (_, .stop): return .stopping
        case (.running, .returned), (.stopping, .returned): return .stopped
        case (.idle, .returned), (.stopped, .returned): return nil
        }
    }
}
