#if canImport(Glibc)
import Glibc
#endif
import CReactor

/// epoll(7), level-triggered: the kernel keeps the interest set, a wake-up costs O(ready descriptors).
final class EpollBackend: PollerBackend {
    private let epfd: Int32
    /// Reused for every wait; grows when a wait fills it, so a burst is drained in fewer calls.
    private var buffer: UnsafeMutablePointer<epoll_event>
    private var capacity: Int

    init() throws(ReactorError) {
        let fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw .system(.last("epoll_create1")) }
        epfd = fd
        capacity = 256
        buffer = .allocate(capacity: capacity)
    }

    deinit {
        buffer.deallocate()
    }

    private static func mask(_ interest: Interest) -> UInt32 {
        var mask: UInt32 = 0
        if interest.contains(.read) { mask |= EPOLLIN.rawValue }
        if interest.contains(.write) { mask |= EPOLLOUT.rawValue }
        return mask
    }

    private func control(_ op: Int32, fd: Int32, interest: Interest) throws(ReactorError) {
        var event = epoll_event()
        event.events = Self.mask(interest)
        event.data.fd = fd
        guard epoll_ctl(epfd, op, fd, &event) == 0 else { throw .system(.last("epoll_ctl")) }
    }

    func add(fd: Int32, interest: Interest) throws(ReactorError) {
        try control(EPOLL_CTL_ADD, fd: fd, interest: interest)
    }

    func modify(fd: Int32, interest: Interest) throws(ReactorError) {
        try control(EPOLL_CTL_MOD, fd: fd, interest: interest)
    }

    func remove(fd: Int32) {
        var event = epoll_event()
        _ = epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &event)
    }

    /// Closing the descriptor takes it out of the epoll set (our sockets are never duplicated, and CLOEXEC keeps
    /// them from children), so the EPOLL_CTL_DEL system call would be wasted: one per short connection.
    func removeClosing(fd: Int32) {}

    func wait(timeoutMilliseconds: Int32, into events: inout [ReadyEvent]) throws(ReactorError) {
        let count = epoll_wait(epfd, buffer, Int32(capacity), timeoutMilliseconds)
        if count < 0 {
            if errno == EINTR { return }
            throw .system(.last("epoll_wait"))
        }
        for index in 0..<Int(count) {
            let raw = buffer[index].events
            var seen: IOEvents = []
            if raw & EPOLLIN.rawValue != 0 { seen.insert(.read) }
            if raw & EPOLLOUT.rawValue != 0 { seen.insert(.write) }
            if raw & EPOLLHUP.rawValue != 0 { seen.insert(.hangup) }
            if raw & EPOLLERR.rawValue != 0 { seen.insert(.error) }
            events.append(ReadyEvent(fd: buffer[index].data.fd, events: seen))
        }
        if Int(count) == capacity && capacity < 8192 {
            buffer.deallocate()
            capacity *= 2
            buffer = .allocate(capacity: capacity)
        }
    }

    func close() {
        _ = Glibc.close(epfd)
    }
}
