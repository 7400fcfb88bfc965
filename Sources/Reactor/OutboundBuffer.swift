#if canImport(Glibc)
import Glibc
#endif
import CReactor

/// A growable ring of bytes waiting to be written. Storage is kept between uses, so steady streaming allocates
/// nothing; a wrapped ring is written with one writev of two pieces.
struct OutboundBuffer: ~Copyable {
    private var storage: UnsafeMutableRawPointer?
    /// While pinned (a send the kernel reads from is in flight), storage the ring outgrew is kept here, not freed.
    private var retired: UnsafeMutableRawPointer?
    private(set) var isPinned = false
    private var capacity = 0
    private var head = 0
    private(set) var count = 0

    deinit {
        storage?.deallocate()
        retired?.deallocate()
    }

    /// The bytes at the head that lie in one piece: what one send can take.
    var firstContiguous: UnsafeRawBufferPointer {
        guard count > 0, let storage else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: storage + head, count: min(count, capacity - head))
    }

    /// Keeps the bytes now at the head where they are (appending may still grow the ring) until `unpin`.
    mutating func pin() {
        isPinned = true
    }

    mutating func unpin() {
        isPinned = false
        retired?.deallocate()
        retired = nil
    }

    var isEmpty: Bool { count == 0 }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        reserve(count + bytes.count)
        let tail = (head + count) % capacity
        let firstPart = min(bytes.count, capacity - tail)
        storage!.advanced(by: tail).copyMemory(from: bytes.baseAddress!, byteCount: firstPart)
        if firstPart < bytes.count {
            storage!.copyMemory(from: bytes.baseAddress! + firstPart, byteCount: bytes.count - firstPart)
        }
        count += bytes.count
    }

    private mutating func reserve(_ needed: Int) {
        guard needed > capacity else { return }
        var newCapacity = max(capacity, 4096)
        while newCapacity < needed { newCapacity *= 2 }
        let newStorage = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        if let storage, count > 0 {
            let firstPart = min(count, capacity - head)
            newStorage.copyMemory(from: storage + head, byteCount: firstPart)
            if firstPart < count { newStorage.advanced(by: firstPart).copyMemory(from: storage, byteCount: count - firstPart) }
        }
        // The first storage outgrown while pinned is the one the kernel reads from; any later one is not.
        if isPinned && retired == nil { retired = storage } else { storage?.deallocate() }
        storage = newStorage
        capacity = newCapacity
        head = 0
    }

    /// Writes as much as the socket takes (until it would block). Returns the bytes written; throws what stopped
    /// it otherwise, naming the call that failed.
    @discardableResult
    mutating func flush(to fd: Int32) throws(SystemError) -> Int {
        var written = 0
        while count > 0 {
            let firstPart = min(count, capacity - head)
            let result: IOResult<Int>
            if firstPart == count {
                let start = storage! + head
                result = try SystemCall.nonBlocking("send") { send(fd, start, firstPart, CREACTOR_MSG_NOSIGNAL) }
            } else {
                var pieces = (iovec(iov_base: storage! + head, iov_len: firstPart),
                              iovec(iov_base: storage!, iov_len: count - firstPart))
                result = try SystemCall.nonBlocking("writev") {
                    withUnsafeMutablePointer(to: &pieces) {
                        $0.withMemoryRebound(to: iovec.self, capacity: 2) { writev(fd, $0, 2) }
                    }
                }
            }
            guard case .processed(let sent) = result else { return written }
            consume(sent)
            written += sent
        }
        return written
    }

    /// Drops `amount` bytes from the head: they have been sent.
    mutating func consume(_ amount: Int) {
        count -= amount
        head = count == 0 ? 0 : (head + amount) % capacity
    }

    /// Returns a large ring's memory once it has drained, so one burst does not pin memory for good.
    mutating func shrinkIfIdle(keeping limit: Int) {
        guard count == 0, capacity > limit, !isPinned else { return }
        storage?.deallocate()
        storage = nil
        capacity = 0
        head = 0
    }
}
