#if canImport(Glibc)
import Glibc
#endif
import CReactor

/// io_uring as a readiness backend: each watched descriptor has one one-shot `IORING_OP_POLL_ADD` in flight; its
/// completion is the ready event, and the poll is re-armed before the next wait, so a descriptor still ready
/// completes again at once (level-triggered, as the loop expects). Every arm, re-arm and removal made during a
/// turn goes to the kernel in the same `io_uring_enter` as the wait.
///
/// A poll's user data is the descriptor and a generation: a completion for an older registration (removed,
/// changed, or closed and reused) is dropped. Unlike epoll, a poll holds its file, so a descriptor must be
/// removed before it is closed (`removeClosing` removes).
final class IOUringBackend: PollerBackend {
    private var ring = creactor_uring()

    private struct Slot {
        var interest: Interest = []
        var generation: UInt32 = 0
        var registered = false
        /// A poll for this generation is in flight.
        var armed = false
    }
    private var slots: [Slot] = []
    /// Descriptors whose poll completed in the last wait: re-armed before the next one if still wanted.
    private var completed: [Int32] = []
    /// The user data of removal requests, whose own completions say nothing.
    private static let removalMark: UInt64 = .max

    /// Submission ring entries; the completion ring is larger so a burst of completions is not held back.
    private static let entries: UInt32 = 4096

    init() throws(ReactorError) {
        let result = creactor_uring_init(&ring, Self.entries, Self.entries * 8)
        guard result == 0 else { throw Self.unavailable(errno: -result) }
    }

    deinit {
        creactor_uring_exit(&ring)
    }

    /// Why io_uring cannot be used here, in one line.
    static func unavailable(errno code: Int32) -> ReactorError {
        let reason: String
        switch code {
        case ENOSYS: reason = "this kernel has no io_uring (io_uring_setup: function not implemented)"
        case EPERM: reason = "io_uring is disabled here (io_uring_setup: operation not permitted; see /proc/sys/kernel/io_uring_disabled or the seccomp policy)"
        case ENOTSUP: reason = "this kernel's io_uring lacks what the backend needs (a wait with a timeout: Linux 5.11 or later)"
        default: reason = "io_uring_setup: \(String(cString: strerror(code)))"
        }
        return .backendUnavailable(backend: "io_uring", reason: reason)
    }

    private static func userData(fd: Int32, generation: UInt32) -> UInt64 {
        UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd))
    }

    private static func mask(_ interest: Interest) -> UInt32 {
        var mask: UInt32 = 0
        if interest.contains(.read) { mask |= UInt32(POLLIN) }
        if interest.contains(.write) { mask |= UInt32(POLLOUT) }
        return mask
    }

    private func slotIndex(_ fd: Int32) -> Int {
        let index = Int(fd)
        if index >= slots.count { slots.append(contentsOf: repeatElement(Slot(), count: index + 1 - slots.count + 64)) }
        return index
    }

    func add(fd: Int32, interest: Interest) throws(ReactorError) {
        let index = slotIndex(fd)
        slots[index].registered = true
        slots[index].generation &+= 1
        slots[index].interest = interest
        slots[index].armed = false
        try arm(fd)
    }

    func modify(fd: Int32, interest: Interest) throws(ReactorError) {
        let index = slotIndex(fd)
        try disarm(fd)
        slots[index].generation &+= 1
        slots[index].interest = interest
        try arm(fd)
    }

    func remove(fd: Int32) {
        let index = slotIndex(fd)
        try? disarm(fd)
        slots[index].generation &+= 1
        slots[index].registered = false
        slots[index].interest = []
    }

    /// A poll holds its file open: it must be removed before the close, unlike an epoll registration.
    func removeClosing(fd: Int32) {
        remove(fd: fd)
    }

    private func arm(_ fd: Int32) throws(ReactorError) {
        let slot = slots[Int(fd)]
        guard slot.registered, !slot.armed, !slot.interest.isEmpty else { return }
        let data = Self.userData(fd: fd, generation: slot.generation)
        try queue { creactor_uring_poll_add(&ring, fd, Self.mask(slot.interest), data) }
        slots[Int(fd)].armed = true
    }

    private func disarm(_ fd: Int32) throws(ReactorError) {
        let slot = slots[Int(fd)]
        guard slot.armed else { return }
        let data = Self.userData(fd: fd, generation: slot.generation)
        try queue { creactor_uring_poll_remove(&ring, data, Self.removalMark) }
        slots[Int(fd)].armed = false
    }

    /// Queues one request, first handing the full ring to the kernel if there is no room.
    private func queue(_ request: () -> Int32) throws(ReactorError) {
        if request() == 0 { return }
        let submitted = creactor_uring_enter(&ring, 0)
        guard submitted >= 0 else { throw .system(SystemError("io_uring_enter", errno: -submitted)) }
        let again = request()
        guard again == 0 else { throw .system(SystemError("io_uring_enter", errno: -again)) }
    }

    func wait(timeoutMilliseconds: Int32, into events: inout [ReadyEvent]) throws(ReactorError) {
        for fd in completed { try arm(fd) }
        completed.removeAll(keepingCapacity: true)
        let result = creactor_uring_enter(&ring, timeoutMilliseconds)
        guard result >= 0 else { throw .system(SystemError("io_uring_enter", errno: -result)) }
        var data: UInt64 = 0
        var res: Int32 = 0
        while creactor_uring_next_cqe(&ring, &data, &res) == 1 {
            guard data != Self.removalMark else { continue }
            let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: data))
            let generation = UInt32(truncatingIfNeeded: data >> 32)
            let index = Int(fd)
            // A completion for a registration that has since ended or changed (or a cancelled poll) is stale.
            guard index < slots.count, slots[index].registered, slots[index].generation == generation else { continue }
            slots[index].armed = false
            completed.append(fd)
            var seen: IOEvents = []
            if res < 0 {
                seen.insert(.error)
            } else {
                if res & Int32(POLLIN) != 0 { seen.insert(.read) }
                if res & Int32(POLLOUT) != 0 { seen.insert(.write) }
                if res & Int32(POLLHUP) != 0 { seen.insert(.hangup) }
                if res & Int32(POLLERR) != 0 { seen.insert(.error) }
            }
            events.append(ReadyEvent(fd: fd, events: seen))
        }
    }

    func close() {
        creactor_uring_exit(&ring)
    }
}
