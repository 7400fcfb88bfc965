#if canImport(Glibc)
import Glibc
#endif
import CReactor

/// An eventfd the reactor watches so another thread can interrupt its wait.
final class Waker: IOHandler {
    let fd: Int32
    private let onWake: () -> Void

    init(onWake: @escaping () -> Void) throws(ReactorError) {
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { throw .system(.last("eventfd")) }
        self.fd = fd
        self.onWake = onWake
    }

    /// Safe from any thread. A full counter (EAGAIN) already means "wake up", so it is ignored.
    static func signal(_ fd: Int32) {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { Glibc.write(fd, $0.baseAddress, 8) }
    }

    func readable() {
        var value: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &value) { Glibc.read(fd, $0.baseAddress, 8) }
        onWake()
    }

    func writable() {}
    func hangup() {}

    func close() {
        _ = Glibc.close(fd)
    }
}
