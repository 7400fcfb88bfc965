/// The ways the reactor can wait for descriptors. The loop, the timers and the transports are the same for all.
public enum BackendKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case select, poll, epoll
    /// io_uring: TCP transports and listeners work by completions (multishot receives into provided buffers, sends
    /// of what would block, multishot accepts); everything else waits on one-shot polls; all submitted with the wait.
    case ioUring = "io_uring"

    /// epoll on Linux: O(ready) per wake-up rather than O(watched).
    public static let `default`: BackendKind = .epoll

    public init(name: String) throws(ReactorError) {
        guard let kind = BackendKind(rawValue: name.lowercased()) else { throw .unknownBackend(name) }
        self = kind
    }

    public var description: String { rawValue }
}

/// The hooks a backend provides. Bookkeeping (handlers, stale events, timers) lives in `Reactor`, not here.
protocol PollerBackend: AnyObject {
    func add(fd: Int32, interest: Interest) throws(ReactorError)
    func modify(fd: Int32, interest: Interest) throws(ReactorError)
    func remove(fd: Int32)
    /// Forgets a descriptor its owner is about to close.
    func removeClosing(fd: Int32)
    /// Whether a wait gathers events (a `WaitBatch`) rather than waking at the first.
    var batchesWaits: Bool { get }
    /// Blocks up to `timeoutMilliseconds` (-1: no limit) and appends ready descriptors to `events`.
    func wait(timeoutMilliseconds: Int32, into events: inout [ReadyEvent]) throws(ReactorError)
    func close()
}

extension PollerBackend {
    func removeClosing(fd: Int32) { remove(fd: fd) }
    var batchesWaits: Bool { false }
}

func makeBackend(_ kind: BackendKind, receiveBuffers: ReceiveBufferRing, waitBatch: WaitBatch?) throws(ReactorError) -> any PollerBackend {
    switch kind {
    case .select: return SelectBackend()
    case .poll: return PollBackend()
    case .epoll: return try EpollBackend()
    case .ioUring: return try IOUringBackend(receiveBuffers: receiveBuffers, waitBatch: waitBatch)
    }
}
