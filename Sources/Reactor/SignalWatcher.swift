#if canImport(Glibc)
import Glibc
#endif
import CReactor

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

/// The process-wide part lives in CReactor: the handler must be async-signal-safe, so it is C that only loads
/// the registered pipe descriptors atomically and writes one byte to each.
enum SignalRouting {
    static func add(writeFD: Int32, signals: [Int32]) {
        _ = creactor_signal_pipe_add(writeFD)
        for signo in signals { _ = creactor_signal_install(signo) }
    }

    static func remove(writeFD: Int32) {
        creactor_signal_pipe_remove(writeFD)
    }
}

/// SIGPIPE would kill the process when a peer vanishes mid-write; every send also passes MSG_NOSIGNAL.
enum BrokenPipe {
    static let ignored: Void = {
        signal(SIGPIPE, SIG_IGN)
    }()
}
