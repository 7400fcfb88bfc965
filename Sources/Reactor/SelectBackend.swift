#if canImport(Glibc)
import Glibc
#endif
import CReactor

/// select(2): the seed's own call. Limited to descriptors below FD_SETSIZE, which `add` enforces so that
/// no `fd_set` is ever written out of bounds.
final class SelectBackend: PollerBackend {
    static let limit = Int32(FD_SETSIZE)

    private var readSet = fd_set()
    private var writeSet = fd_set()
    /// Registered descriptors, so a wake-up scans what is watched rather than every number up to the highest.
    private var watched: [Int32] = []
    private var position: [Int32: Int] = [:]
    private var highest: Int32 = -1

    func add(fd: Int32, interest: Interest) throws(ReactorError) {
        guard fd >= 0, fd < Self.limit else { throw .descriptorTooLarge(fd: fd, limit: Self.limit) }
        position[fd] = watched.count
        watched.append(fd)
        highest = max(highest, fd)
        apply(fd: fd, interest: interest)
    }

    func modify(fd: Int32, interest: Interest) throws(ReactorError) {
        guard position[fd] != nil else { return }
        apply(fd: fd, interest: interest)
    }

    func remove(fd: Int32) {
        guard let index = position.removeValue(forKey: fd) else { return }
        apply(fd: fd, interest: .none)
        let last = watched.removeLast()
        if index < watched.count {
            watched[index] = last
            position[last] = index
        }
        if fd == highest { highest = watched.max() ?? -1 }
    }

    private func apply(fd: Int32, interest: Interest) {
        FDSet.update(&readSet, fd: fd, on: interest.contains(.read))
        FDSet.update(&writeSet, fd: fd, on: interest.contains(.write))
    }

    func wait(timeoutMilliseconds: Int32, into events: inout [ReadyEvent]) throws(ReactorError) {
        var readable = readSet
        var writable = writeSet
        var result: Int32
        if timeoutMilliseconds < 0 {
            result = select(highest + 1, &readable, &writable, nil, nil)
        } else {
            var tv = timeval(tv_sec: Int(timeoutMilliseconds / 1000), tv_usec: Int(timeoutMilliseconds % 1000) * 1000)
            result = select(highest + 1, &readable, &writable, nil, &tv)
        }
        if result < 0 {
            if errno == EINTR { return }
            throw .system(.last("select"))
        }
        guard result > 0 else { return }
        // Walk the returned sets a word at a time, visiting only set bits: O(highest / 64) rather than O(watched).
        let words = Int(highest) / Int.bitWidth + 1
        withUnsafeBytes(of: &readable) { readRaw in
            withUnsafeBytes(of: &writable) { writeRaw in
                let readWords = readRaw.bindMemory(to: UInt.self)
                let writeWords = writeRaw.bindMemory(to: UInt.self)
                for word in 0..<words {
                    var bits = readWords[word] | writeWords[word]
                    while bits != 0 {
                        let bit = bits.trailingZeroBitCount
                        bits &= bits &- 1
                        let mask: UInt = 1 << UInt(bit)
                        var seen: IOEvents = []
                        if readWords[word] & mask != 0 { seen.insert(.read) }
                        if writeWords[word] & mask != 0 { seen.insert(.write) }
                        events.append(ReadyEvent(fd: Int32(word * Int.bitWidth + bit), events: seen))
                    }
                }
            }
        }
    }

    func close() {}
}

/// FD_SET and friends are C macros Swift cannot call; these do the same on the set's words.
enum FDSet {
    private static let bitsPerWord = Int32(MemoryLayout<Int>.size * 8)

    static func update(_ set: inout fd_set, fd: Int32, on: Bool) {
        precondition(fd >= 0 && fd < SelectBackend.limit, "descriptor outside fd_set")
        withUnsafeMutableBytes(of: &set) { raw in
            let words = raw.bindMemory(to: Int.self)
            let bit = 1 << Int(fd % bitsPerWord)
            if on { words[Int(fd / bitsPerWord)] |= bit } else { words[Int(fd / bitsPerWord)] &= ~bit }
        }
    }
}
