#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// Line output straight to the descriptors: each line leaves at once even when stdout is a pipe (a tee, a test),
/// which is the point of watching slow poetry arrive. A command running a loop can gather its standard output
/// over each turn of the loop instead (`gatherLines`): the lines still leave before the loop sleeps, so nothing
/// waits on a quiet connection, but a turn that prints a line for each of thousands of reads makes one `write`,
/// not thousands (issue 19: one system call per line was the largest cost of a 10,000-poem fetch).
enum Console {
    /// Standard output gathered since the last flush; nil while lines leave one by one. Locked: `serve` prints
    /// from more than one thread.
    private static let gathered = Locked<[UInt8]?>(nil)
    /// Past this many gathered bytes they leave at once, turn or not.
    private static let gatherLimit = 64 * 1024

    static func out(_ line: String) {
        let wasGathered = gathered.withLock { buffer -> Bool in
            guard buffer != nil else { return false }
            buffer!.append(contentsOf: line.utf8)
            buffer!.append(UInt8(ascii: "\n"))
            if buffer!.count >= gatherLimit { writeAndEmpty(&buffer!) }
            return true
        }
        if !wasGathered { write(line + "\n", to: 1) }
    }

    /// Standard error, after whatever standard output was gathered, so the two keep their order on a terminal.
    static func err(_ line: String) {
        flush()
        write(line + "\n", to: 2)
    }

    /// From now on standard output is gathered, and written whenever `loop` is about to wait and when the
    /// process exits (by returning from main or by `exit`).
    static func gatherLines(untilEachWaitOf loop: Reactor) {
        let first = gathered.withLock { buffer -> Bool in
            guard buffer == nil else { return false }
            buffer = []
            buffer!.reserveCapacity(gatherLimit + 1024)
            return true
        }
        if first { atexit { Console.flush() } }
        loop.beforeEachWait { Console.flush() }
    }

    /// Writes what was gathered, if anything.
    static func flush() {
        gathered.withLock { buffer in
            guard buffer?.isEmpty == false else { return }
            writeAndEmpty(&buffer!)
        }
    }

    private static func writeAndEmpty(_ buffer: inout [UInt8]) {
        buffer.withUnsafeBytes { write($0, to: 1) }
        buffer.removeAll(keepingCapacity: true)
    }

    private static func write(_ text: String, to fd: Int32) {
        var text = text
        text.withUTF8 { write(UnsafeRawBufferPointer($0), to: fd) }
    }

    private static func write(_ bytes: UnsafeRawBufferPointer, to fd: Int32) {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return }
            offset += written
        }
    }
}
