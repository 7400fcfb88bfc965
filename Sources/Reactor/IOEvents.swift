/// What a handler wants to hear about for one descriptor.
public struct Interest: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let read = Interest(rawValue: 1)
    public static let write = Interest(rawValue: 2)
    public static let none: Interest = []
}

/// What a backend saw on one descriptor, in one portable vocabulary for all three backends.
public struct IOEvents: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let read = IOEvents(rawValue: 1)
    public static let write = IOEvents(rawValue: 2)
    /// The peer is gone both ways (POLLHUP / EPOLLHUP).
    public static let hangup = IOEvents(rawValue: 4)
    /// The descriptor has a pending error (POLLERR / EPOLLERR).
    public static let error = IOEvents(rawValue: 8)
}

/// One ready descriptor as a backend reports it.
public struct ReadyEvent: Sendable {
    public var fd: Int32
    public var events: IOEvents
}

/// Something registered with the reactor for a descriptor. Called on the reactor thread only.
public protocol IOHandler: AnyObject {
    func readable()
    func writable()
    /// Hang-up or error while the handler wants neither reading nor writing; it must act (usually close),
    /// or level-triggered backends would report it again on every iteration.
    func hangup()
    /// The reactor is being deallocated with this handler still registered: release the descriptor and anything
    /// that would otherwise keep the handler alive (nothing may be scheduled on the reactor any more).
    func reactorClosing()
}

extension IOHandler {
    public func reactorClosing() {}
}
