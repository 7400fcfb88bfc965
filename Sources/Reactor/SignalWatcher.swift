#if canImport(Glibc)
import Glibc
#endif
import CReactor
import Synchronization

/// Turns SIGINT/SIGTERM into a callback on a reactor's thread, through a self-pipe: the C handler only writes
/// the signal number to every registered pipe, which is async-signal-safe.
final class SignalWatcher: IOHandler {
    private let readFD: Int32
    private let writeFD: Int32
    private let onSignal: (Int32) -> Void

    init(signals: [Int32], onSignal: @escaping (Int32) -> Void) throws(ReactorError) {
        var fds: [Int32] = [0, 0]
        guard creactor_pipe2(&fds, O_NONBLOCK | O_CLOEXEC) == 0 else { throw .system(.last("pipe2")) }
        readFD = fds[0]
        writeFD = fds[1]
        self.onSignal = onSignal
        SignalRouting.add(writeFD: writeFD, signals: signals)
    }

    var fd: Int32 { readFD }

    func readable() {
        var bytes = (UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0), UInt8(0))
        while true {
            let count = withUnsafeMutableBytes(of: &bytes) { Glibc.read(readFD, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            withUnsafeBytes(of: &bytes) { raw in
                for index in 0..<count { onSignal(Int32(raw[index])) }
            }
        }
    }

    func writable() {}
    func hangup() {}

    func close() {
        SignalRouting.remove(writeFD: writeFD)
        _ = Glibc.close(readFD)
        _ = Glibc.close(writeFD)
    }
}

/// The process-wide part: which pipes hear signals. Slots are plain Int32 words written under a lock and read by
/// the handler without one; an aligned 32-bit store is atomic on every platform Swift runs on.
enum SignalRouting {
    static let slotCount = 64
    nonisolated(unsafe) static let slots: UnsafeMutablePointer<Int32> = {
        let slots = UnsafeMutablePointer<Int32>.allocate(capacity: slotCount)
        slots.initialize(repeating: -1, count: slotCount)
        return slots
    }()
    static let lock = Mutex<Set<Int32>>([])

    static func add(writeFD: Int32, signals: [Int32]) {
        _ = slots  // initialise before any handler can run
        lock.withLock { installed in
            for index in 0..<slotCount where slots[index] < 0 {
                slots[index] = writeFD
                break
            }
            for signo in signals where !installed.contains(signo) {
                installed.insert(signo)
                var action = sigaction()
                action.__sigaction_handler.sa_handler = signalHandler
                action.sa_flags = SA_RESTART
                sigemptyset(&action.sa_mask)
                sigaction(signo, &action, nil)
            }
            // A parent may have started us with these signals blocked (test runners and some supervisors do);
            // unblock them on this thread so they arrive at all.
            var mask = sigset_t()
            sigemptyset(&mask)
            for signo in signals { sigaddset(&mask, signo) }
            pthread_sigmask(SIG_UNBLOCK, &mask, nil)
        }
    }

    static func remove(writeFD: Int32) {
        lock.withLock { _ in
            for index in 0..<slotCount where slots[index] == writeFD { slots[index] = -1 }
        }
    }
}

private let signalHandler: @convention(c) (Int32) -> Void = { signo in
    let savedErrno = errno
    var byte = UInt8(truncatingIfNeeded: signo)
    for index in 0..<SignalRouting.slotCount {
        let fd = SignalRouting.slots[index]
        if fd >= 0 { _ = write(fd, &byte, 1) }
    }
    errno = savedErrno
}

/// SIGPIPE would kill the process when a peer vanishes mid-write; every send also passes MSG_NOSIGNAL.
enum BrokenPipe {
    static let ignored: Void = {
        signal(SIGPIPE, SIG_IGN)
    }()
}
