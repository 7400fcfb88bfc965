/// What the loop has done so far; the gateway's /metrics and page show these.
public struct ReactorStats: Sendable, Equatable {
    /// Passes through the loop (one backend wait each).
    public var iterations: UInt64 = 0
    /// Ready events handed to handlers.
    public var eventsDispatched: UInt64 = 0
    public var timersFired: UInt64 = 0
    /// Calls from other threads run on the loop.
    public var crossThreadCalls: UInt64 = 0
    /// Time spent inside select/poll/epoll_wait: the reactor waiting on every descriptor at once.
    public var blockedNanoseconds: UInt64 = 0
    /// Time spent running handlers, timers and calls.
    public var busyNanoseconds: UInt64 = 0
    /// Descriptors registered right now.
    public var registeredDescriptors: Int = 0

    public init() {}

    /// Adds another loop's figures to these (several reactor threads reported as one).
    public mutating func add(_ other: ReactorStats) {
        iterations += other.iterations
        eventsDispatched += other.eventsDispatched
        timersFired += other.timersFired
        crossThreadCalls += other.crossThreadCalls
        blockedNanoseconds += other.blockedNanoseconds
        busyNanoseconds += other.busyNanoseconds
        registeredDescriptors += other.registeredDescriptors
    }
}
