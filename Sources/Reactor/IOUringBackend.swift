#if canImport(Glibc)
import Glibc
#endif
import CReactor

/// io_uring, two ways at once. Readiness, for what is not a socket transport (wake-ups, signal pipes, connects):
/// each watched descriptor has one one-shot
/// `IORING_OP_POLL_ADD` in flight; its completion is the ready event, and the poll is re-armed before the next
/// wait, so a descriptor still ready completes again at once (level-triggered, as the loop expects).
/// Completions, for a TCP transport's receives (`CompletionReads`): one multishot `IORING_OP_RECV` per socket
/// (while none is in flight, a multishot poll for errors alone, so a reset is heard as epoll would report it)
/// takes buffers from a provided-buffer ring (a piece at a time where the kernel consumes them incrementally), so
/// bytes arrive with the event and need no `recv` call; a transport's writes of a turn go out as one
/// `IORING_OP_SEND` (staged, then submitted just before the wait); listeners accept by multishot. Every arm,
/// re-arm, start, stop and removal made during a turn goes to the kernel in the same `io_uring_enter` as the wait.
///
/// A request's user data is the descriptor, a generation and its kind: a completion for an older registration
/// (removed, changed, or closed and reused) is dropped (a receive's buffer is still accounted for). Unlike
/// epoll, a request holds its file, so a descriptor must be removed before it is closed (`removeClosing`
/// removes).
// @exclusivity(unchecked) marks state confined to the loop thread whose accesses never overlap (the ring is passed
// to one C call at a time; the lists are appended to or swapped, with no call back into this class inside the
// access): each checked access costs about forty instructions, several a request (callgrind, BENCHMARKS.md).
final class IOUringBackend: PollerBackend, CompletionReads {
    @exclusivity(unchecked) private var ring = creactor_uring()
    /// Allocated once, so the hot path passes a pointer rather than an inout access to a stored property.
    private let buffers: UnsafeMutablePointer<creactor_uring_buffers>
    private static let bufferGroup: UInt16 = 0

    private struct Slot {
        var interest: Interest = []
        var generation: UInt32 = 0
        var registered = false
        /// A poll for this generation is in flight.
        var armed = false
        /// Takes the receives, while this registration receives by completions.
        var receiver: (any CompletionReceiver)?
        /// Where that receiver's object lies, for prefetching without touching its reference count.
        var receiverAddress: UnsafeRawPointer?
        var receiveGeneration: UInt32 = 0
        /// A multishot receive for this generation is in flight (until its completion without `more`).
        var receiving = false
        /// Its cancellation has been asked for.
        var stopping = false
        /// A send for this generation is in flight.
        var sending = false
        /// The receiver is to submit its send just before the next wait (it is in `stagedSends`).
        var sendStaged = false
        /// The descriptor is a listener: its receive is a multishot accept.
        var accepts = false
        /// A hang-up watch ended without an error, which a multishot poll does only when the completion queue
        /// overflows: none is armed again until the next receive, rather than one a turn into a full queue.
        var hangupWatchSpent = false
    }
    @exclusivity(unchecked) private var slots: [Slot] = []
    /// Descriptors whose poll completed in the last wait, or whose receive ended in the last dispatch: (re-)armed
    /// before the next wait if a poll or a hang-up watch is still wanted.
    @exclusivity(unchecked) private var completed: [Int32] = []
    /// Descriptors whose receivers submit their sends just before the next wait, and the list being worked through
    /// (two, swapped, so a turn allocates nothing).
    @exclusivity(unchecked) private var stagedSends: [Int32] = []
    @exclusivity(unchecked) private var dueSends: [Int32] = []

    /// A receive or send completion collected by `wait`, delivered by `dispatchCompletions` once the loop has its
    /// wake time.
    private struct TransportCompletion {
        var fd: Int32
        var generation: UInt32
        var isSend: Bool
        var isAccept: Bool
        var result: Int32
        var flags: UInt32
    }
    @exclusivity(unchecked) private var completions: [TransportCompletion] = []
    /// Receivers whose registration ended with a send in flight, by the send's user data: held until the send's
    /// completion, because the bytes it reads belong to them.
    private var draining: [UInt64: any CompletionReceiver] = [:]
    /// Receivers attached now.
    @exclusivity(unchecked) private var receivers = 0
    /// Whether the kernel consumes the receive buffers incrementally (6.12), many small receives to a buffer.
    var consumesBuffersIncrementally: Bool { buffers.pointee.incremental != 0 }
    /// Completions collected by the last wait and not yet dispatched (for tests).
    var collectedCompletions: Int { completions.count }
    /// How often a receive ended because the buffer ring had run dry (ENOBUFS) and had to start again.
    private(set) var bufferRingExhaustions: UInt64 = 0
    /// Ended registrations whose send has not completed yet (for tests).
    var drainingSends: Int { draining.count }
    /// Sends completed through the ring (for tests).
    private(set) var completedSends: UInt64 = 0

    // User data: bits 0–31 the descriptor, 32–61 the generation, 62–63 the kind.
    private static let generationMask: UInt32 = (1 << 30) - 1
    private static let receiveKind: UInt64 = 1 << 62
    private static let sendKind: UInt64 = 2 << 62
    /// A multishot accept (the removal mark, all ones, has this kind too, but descriptor -1 is never registered).
    private static let acceptKind: UInt64 = 3 << 62
    private static let kindMask: UInt64 = 3 << 62
    /// The user data of removals and cancellations, whose own completions say nothing.
    private static let removalMark: UInt64 = .max

    /// Submission ring entries; the completion ring is larger so a burst of completions is not held back.
    private static let entries: UInt32 = 4096

    /// Whether waits gather completions (a `WaitBatch` was asked for and the kernel has `min_wait_usec`).
    let batchesWaits: Bool

    init(receiveBuffers: ReceiveBufferRing = .standard, waitBatch: WaitBatch? = nil) throws(ReactorError) {
        buffers = .allocate(capacity: 1)
        buffers.initialize(to: creactor_uring_buffers())
        let result = creactor_uring_init(&ring, Self.entries, Self.entries * 8)
        guard result == 0 else {
            buffers.deallocate()
            throw Self.unavailable(errno: -result)
        }
        let registered = creactor_uring_buffers_init(&ring, buffers, UInt32(receiveBuffers.count),
                                                     UInt32(receiveBuffers.size), Self.bufferGroup)
        guard registered == 0 else {
            creactor_uring_exit(&ring)
            buffers.deallocate()
            // Still one line naming the reason, as for a ring that cannot be set up at all.
            let reason = "this kernel's io_uring cannot take a provided-buffer ring (io_uring_register: "
                + "\(String(cString: strerror(-registered))); Linux 6.1 or later)"
            throw .backendUnavailable(backend: "io_uring", reason: reason)
        }
        if let waitBatch {
            // The ring keeps a batch of one (no batch) when asked for one completion or no delay.
            batchesWaits = creactor_uring_set_wait_batch(&ring, UInt32(clamping: waitBatch.completions),
                                                         UInt32(clamping: waitBatch.maxDelayMicroseconds)) == 0
                && ring.batch_completions > 1
        } else {
            batchesWaits = false
        }
    }

    deinit {
        close()
        buffers.deallocate()
    }

    /// Why io_uring cannot be used here, in one line.
    static func unavailable(errno code: Int32) -> ReactorError {
        let reason: String
        switch code {
        case ENOSYS: reason = "this kernel has no io_uring (io_uring_setup: function not implemented)"
        case EPERM: reason = "io_uring is disabled here (io_uring_setup: operation not permitted; see /proc/sys/kernel/io_uring_disabled or the seccomp policy)"
        case ENOTSUP: reason = "this kernel's io_uring lacks what the backend needs (deferred task running and multishot receives: Linux 6.1 or later)"
        default: reason = "io_uring_setup: \(String(cString: strerror(code)))"
        }
        return .backendUnavailable(backend: "io_uring", reason: reason)
    }

    private static func userData(fd: Int32, generation: UInt32) -> UInt64 {
        UInt64(generation & generationMask) << 32 | UInt64(UInt32(bitPattern: fd))
    }

    private static func receiveUserData(fd: Int32, generation: UInt32) -> UInt64 {
        receiveKind | userData(fd: fd, generation: generation)
    }

    private static func acceptUserData(fd: Int32, generation: UInt32) -> UInt64 {
        acceptKind | userData(fd: fd, generation: generation)
    }

    private static func sendUserData(fd: Int32, generation: UInt32) -> UInt64 {
        sendKind | userData(fd: fd, generation: generation)
    }

    private static func nextGeneration(_ generation: UInt32) -> UInt32 {
        (generation &+ 1) & generationMask
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
        slots[index].generation = Self.nextGeneration(slots[index].generation)
        slots[index].interest = interest
        slots[index].armed = false
        slots[index].hangupWatchSpent = false
        try arm(fd)
    }

    func modify(fd: Int32, interest: Interest) throws(ReactorError) {
        let index = slotIndex(fd)
        try disarm(fd)
        slots[index].generation = Self.nextGeneration(slots[index].generation)
        slots[index].interest = interest
        try arm(fd)
    }

    func remove(fd: Int32) {
        let index = slotIndex(fd)
        try? disarm(fd)
        slots[index].generation = Self.nextGeneration(slots[index].generation)
        slots[index].registered = false
        slots[index].interest = []
        if let receiver = slots[index].receiver {
            // The receive holds the file: cancel it so the close takes effect; what it still completes is stale.
            if slots[index].receiving {
                let data = receiveRequest(index, fd)
                try? queue { creactor_uring_cancel(&ring, data, Self.removalMark) }
            }
            slots[index].accepts = false
            if slots[index].sending {
                let data = Self.sendUserData(fd: fd, generation: slots[index].receiveGeneration)
                try? queue { creactor_uring_cancel(&ring, data, Self.removalMark) }
                draining[data] = receiver
                slots[index].sending = false
            }
            slots[index].sendStaged = false
            slots[index].receiveGeneration = Self.nextGeneration(slots[index].receiveGeneration)
            slots[index].receiver = nil
            slots[index].receiverAddress = nil
            receivers -= 1
            slots[index].receiving = false
            slots[index].stopping = false
            slots[index].hangupWatchSpent = false
        }
    }

    /// A request holds its file open: it must be removed before the close, unlike an epoll registration.
    func removeClosing(fd: Int32) {
        remove(fd: fd)
    }

    private func arm(_ fd: Int32) throws(ReactorError) {
        let slot = slots[Int(fd)]
        guard slot.registered, !slot.armed else { return }
        guard !slot.interest.isEmpty || watchesForHangup(slot) else { return }
        let data = Self.userData(fd: fd, generation: slot.generation)
        if slot.interest.isEmpty {
            // Best effort: a watch the ring cannot take now stops nothing (the next arm tries again).
            guard (try? queue { creactor_uring_poll_watch(&ring, fd, data) }) != nil else { return }
        } else {
            try queue { creactor_uring_poll_add(&ring, fd, Self.mask(slot.interest), data) }
        }
        slots[Int(fd)].armed = true
    }

    /// A socket transport with no receive in flight (paused) still hears of a reset, as an epoll registration with
    /// no interest does: a poll for nothing but errors stands in for the receive, which would have reported it.
    private func watchesForHangup(_ slot: Slot) -> Bool {
        slot.interest.isEmpty && slot.receiver != nil && !slot.accepts && !slot.receiving && !slot.hangupWatchSpent
    }

    /// Ends a hang-up watch before a receive starts (the receive reports errors itself); its cancellation's
    /// completion belongs to the old generation, so it is not read as an error.
    private func endHangupWatch(_ fd: Int32) throws(ReactorError) {
        let index = Int(fd)
        guard slots[index].armed, slots[index].interest.isEmpty else { return }
        try disarm(fd)
        slots[index].generation = Self.nextGeneration(slots[index].generation)
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

    // MARK: completion reads

    func attachReceiver(fd: Int32, _ receiver: any CompletionReceiver, accepting: Bool) {
        let index = slotIndex(fd)
        if slots[index].receiver == nil { receivers += 1 }
        slots[index].receiver = receiver
        slots[index].receiverAddress = UnsafeRawPointer(Unmanaged.passUnretained(receiver as AnyObject).toOpaque())
        slots[index].accepts = accepting
    }

    /// The user data of `fd`'s receive (or accept) for its current generation.
    private func receiveRequest(_ index: Int, _ fd: Int32) -> UInt64 {
        let generation = slots[index].receiveGeneration
        return slots[index].accepts ? Self.acceptUserData(fd: fd, generation: generation)
            : Self.receiveUserData(fd: fd, generation: generation)
    }

    func receive(fd: Int32) throws(ReactorError) {
        let index = Int(fd)
        guard slots[index].receiver != nil, !slots[index].receiving else { return }
        try endHangupWatch(fd)
        slots[index].hangupWatchSpent = false
        let data = receiveRequest(index, fd)
        if slots[index].accepts {
            try queue { creactor_uring_accept_multishot(&ring, fd, CREACTOR_SOCK_NONBLOCK | CREACTOR_SOCK_CLOEXEC, data) }
        } else {
            try queue { creactor_uring_recv_multishot(&ring, fd, Self.bufferGroup, data) }
        }
        slots[index].receiving = true
    }

    func stopReceiving(fd: Int32) {
        let index = Int(fd)
        guard slots[index].receiving, !slots[index].stopping else { return }
        let data = receiveRequest(index, fd)
        // A failed cancel leaves the receive running; the transport holds what it delivers, so nothing is lost.
        guard (try? queue { creactor_uring_cancel(&ring, data, Self.removalMark) }) != nil else { return }
        slots[index].stopping = true
    }

    func stageSend(fd: Int32) {
        let index = Int(fd)
        guard slots[index].receiver != nil, !slots[index].sendStaged else { return }
        slots[index].sendStaged = true
        stagedSends.append(fd)
    }

    /// Lets every receiver that staged a send submit it now, before the wait that takes it to the kernel.
    func submitStagedSends() {
        guard !stagedSends.isEmpty else { return }
        swap(&stagedSends, &dueSends)
        for fd in dueSends {
            let index = Int(fd)
            // Skipped if the registration ended meanwhile (its removal cleared the mark).
            guard slots[index].sendStaged, let receiver = slots[index].receiver else { continue }
            slots[index].sendStaged = false
            receiver.stagedSendDue()
        }
        dueSends.removeAll(keepingCapacity: true)
    }

    func send(fd: Int32, _ bytes: UnsafeRawBufferPointer, waitForRoom: Bool) throws(ReactorError) {
        let index = Int(fd)
        precondition(slots[index].receiver != nil && !slots[index].sending, "one send at a time, by a receiver")
        let data = Self.sendUserData(fd: fd, generation: slots[index].receiveGeneration)
        try queue { creactor_uring_send(&ring, fd, bytes.baseAddress, UInt32(clamping: bytes.count), waitForRoom ? 1 : 0, data) }
        slots[index].sending = true
    }

    func dispatchCompletions() -> Int {
        let count = completions.count
        guard count > 0 else { return 0 }
        var delivered = 0
        // A few hundred receivers' objects stay in cache from turn to turn: prefetching them would only cost.
        let prefetching = count >= Self.prefetchBatch && receivers >= Self.prefetchReceivers
        for position in 0..<count {
            if prefetching && position % Self.prefetchChunk == 0 {
                prefetch(completionsFrom: position, to: min(position + Self.prefetchChunk, count))
            }
            let completion = completions[position]
            let index = Int(completion.fd)
            if completion.isSend {
                if slots[index].receiveGeneration == completion.generation, let receiver = slots[index].receiver {
                    slots[index].sending = false
                    completedSends &+= 1
                    receiver.sendCompleted(completion.result)
                    delivered += 1
                } else {
                    // The send of an ended registration is over: its bytes' owner may go.
                    draining[Self.sendUserData(fd: completion.fd, generation: completion.generation)] = nil
                }
                continue
            }
            if completion.isAccept {
                if slots[index].receiveGeneration == completion.generation, slots[index].accepts,
                   let receiver = slots[index].receiver {
                    if completion.flags & CREACTOR_CQE_F_MORE == 0 {
                        slots[index].receiving = false
                        slots[index].stopping = false
                    }
                    receiver.receiveCompleted(completion.result, UnsafeRawBufferPointer(start: nil, count: 0),
                                              more: completion.flags & CREACTOR_CQE_F_MORE != 0)
                    delivered += 1
                } else if completion.result >= 0 {
                    // Accepted for a listener that has gone: nobody owns the connection.
                    Glibc.close(completion.result)
                }
                continue
            }
            let hasBuffer = completion.flags & CREACTOR_CQE_F_BUFFER != 0
            let bufferID = UInt16(truncatingIfNeeded: completion.flags >> CREACTOR_CQE_BUFFER_SHIFT)
            // Taken whether delivered or stale, so an incremental buffer's count of what it holds stays in step.
            var bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            if hasBuffer && completion.result > 0 {
                bytes = UnsafeRawBufferPointer(start: creactor_uring_buffer_take(buffers, bufferID, UInt32(completion.result)),
                                               count: Int(completion.result))
            }
            // Checked now, not when collected: an earlier receiver in this batch may have closed this descriptor.
            if slots[index].receiveGeneration == completion.generation, let receiver = slots[index].receiver {
                let more = completion.flags & CREACTOR_CQE_F_MORE != 0
                if !more {
                    slots[index].receiving = false
                    slots[index].stopping = false
                }
                if completion.result == -ENOBUFS { bufferRingExhaustions &+= 1 }
                receiver.receiveCompleted(completion.result, bytes, more: more)
                delivered += 1
                // Ended and not started again (paused): watch for a reset meanwhile, from the next wait on (by then
                // the transport may have closed, and nothing is asked of the kernel for it).
                if !more && !slots[index].receiving && slots[index].receiveGeneration == completion.generation {
                    completed.append(completion.fd)
                }
            }
            if hasBuffer && creactor_uring_buffer_finished(buffers, completion.result, completion.flags) != 0 {
                creactor_uring_buffer_return(buffers, bufferID)
            }
        }
        completions.removeAll(keepingCapacity: true)
        return delivered
    }

    /// Completions are dispatched in chunks of this many, whose memory is loaded before the first of them runs.
    private static let prefetchChunk = 128
    /// Batches from this size on are prefetched, once this many receivers are attached (a keep-alive server with a
    /// few hundred connections keeps them all in cache; a fan-out's 10,000 do not fit).
    private static let prefetchBatch = 16
    private static let prefetchReceivers = 1024

    /// Loads what the completions in `start..<end` will touch, one level at a time so each pass finds the last
    /// one's loads landed: their slots, then their receivers (a transport is four cache lines), then what each
    /// receiver's call will touch. In a fan-out's batch each would be a cache miss otherwise, one after another.
    private func prefetch(completionsFrom start: Int, to end: Int) {
        slots.withUnsafeBufferPointer { slotBuffer in
            for position in start..<end { creactor_prefetch(slotBuffer.baseAddress! + Int(completions[position].fd), 1) }
            for position in start..<end {
                if let address = slotBuffer[Int(completions[position].fd)].receiverAddress { creactor_prefetch(address, 4) }
            }
        }
        for position in start..<end { slots[Int(completions[position].fd)].receiver?.prefetchForCompletion() }
    }

    // MARK: waiting

    func wait(timeoutMilliseconds: Int32, into events: inout [ReadyEvent]) throws(ReactorError) {
        submitStagedSends()
        for fd in completed { try arm(fd) }
        completed.removeAll(keepingCapacity: true)
        let result = creactor_uring_enter(&ring, timeoutMilliseconds)
        // EAGAIN and EBUSY are the kernel short of memory for a submission or holding completions not yet
        // reaped: this turn reaps what is there, and the next enter submits what is left. Anything else is fatal.
        guard result >= 0 || result == -EAGAIN || result == -EBUSY else {
            throw .system(SystemError("io_uring_enter", errno: -result))
        }
        var data: UInt64 = 0
        var res: Int32 = 0
        var flags: UInt32 = 0
        while creactor_uring_next_cqe(&ring, &data, &res, &flags) == 1 {
            guard data != Self.removalMark else { continue }
            let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: data))
            let generation = UInt32(truncatingIfNeeded: data >> 32) & Self.generationMask
            let kind = data & Self.kindMask
            if kind != 0 {
                completions.append(TransportCompletion(fd: fd, generation: generation, isSend: kind == Self.sendKind,
                                                       isAccept: kind == Self.acceptKind, result: res, flags: flags))
                continue
            }
            let index = Int(fd)
            // A completion for a registration that has since ended or changed (or a cancelled poll) is stale.
            guard index < slots.count, slots[index].registered, slots[index].generation == generation else { continue }
            // A poll with no interest is a hang-up watch (`arm` makes no other kind); it lasts while flagged MORE.
            let isWatch = slots[index].interest.isEmpty
            if !isWatch || flags & CREACTOR_CQE_F_MORE == 0 { slots[index].armed = false }
            if isWatch && res >= 0 && res & Int32(POLLERR) == 0 {
                // The peer shut its side, not an error: no event (the bytes before its end of stream are still to
                // be read when reading resumes). The watch goes on, to hear a reset after the FIN; one that ended
                // (a full completion queue) waits for the next receive (`hangupWatchSpent`).
                if !slots[index].armed { slots[index].hangupWatchSpent = true }
                continue
            }
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
        // Before and after the ring goes: the buffers are unmapped at whichever point no receive can fill them.
        creactor_uring_buffers_exit(&ring, buffers)
        creactor_uring_exit(&ring)
        creactor_uring_buffers_exit(&ring, buffers)
    }
}
