#if canImport(Glibc)
import Glibc
#endif
import CReactor

/// poll(2): no descriptor limit, but every wake-up hands the kernel the whole array.
final class PollBackend: PollerBackend {
    private var entries: [pollfd] = []
    private var position: [Int32: Int] = [:]

    func add(fd: Int32, interest: Interest) throws(ReactorError) {
        position[fd] = entries.count
        entries.append(pollfd(fd: fd, events: Self.mask(interest), revents: 0))
    }

    func modify(fd: Int32, interest: Interest) throws(ReactorError) {
        guard let index = position[fd] else { return }
        entries[index].events = Self.mask(interest)
    }

    func remove(fd: Int32) {
        guard let index = position.removeValue(forKey: fd) else { return }
        let last = entries.removeLast()
        if index < entries.count {
            entries[index] = last
            position[last.fd] = index
        }
    }

    private static func mask(_ interest: Interest) -> Int16 {
        var mask: Int32 = 0
        if interest.contains(.read) { mask |= POLLIN }
        if interest.contains(.write) { mask |= POLLOUT }
        return Int16(mask)
    }

    func wait(timeoutMilliseconds: Int32, into events: inout [ReadyEvent]) throws(ReactorError) {
        let count = entries.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), timeoutMilliseconds) }
        if count < 0 {
            if errno == EINTR { return }
            throw .system(.last("poll"))
        }
        guard count > 0 else { return }
        var remaining = Int(count)
        for entry in entries where entry.revents != 0 {
            let revents = Int32(entry.revents)
            var seen: IOEvents = []
            if revents & POLLIN != 0 { seen.insert(.read) }
            if revents & POLLOUT != 0 { seen.insert(.write) }
            if revents & POLLHUP != 0 { seen.insert(.hangup) }
            if revents & (POLLERR | POLLNVAL) != 0 { seen.insert(.error) }
            events.append(ReadyEvent(fd: entry.fd, events: seen))
            remaining -= 1
            if remaining == 0 { break }
        }
    }

    func close() {}
}
