#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// Line output straight to the descriptors: each line leaves at once even when stdout is a pipe (a tee, a test),
/// which is the point of watching slow poetry arrive. A command running a loop can gather its standard output
/// instead (`gatherLines`): lines leave at most `gatherDelay` after the first of them was printed (a delay no one
/// watching can see), so a fetch printing a line for each of thousands of reads makes a few dozen `write` calls a
/// second, not one per line (issue 19: a system call per line was the largest cost of a 10,000-poem fetch; one per
/// turn of the loop was still 62,000 of them, as a fast client wakes for every few reads).
enum Console {
    /// Standard output gathered since the last flush; nil while lines leave one by one. Locked: `serve` prints
    /// from more than one thread.
    private static let gathered = Locked<[UInt8]?>(nil)
    /// Past this many gathered bytes they leave at once.
    private static let gatherLimit = 64 * 1024
    /// How long the first gathered line may wait for company.
    private static let gatherDelay = 0.01
    /// When the oldest line still gathered was printed (0: none is), and whether a timer will write them. Touched
    /// only by the loop's thread, in its before-wait hook and timer.
    nonisolated(unsafe) private static var oldestGathered: UInt64 = 0
    nonisolated(unsafe) private static var flushTimer: TimerHandle?

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

    /// Output appended in place by `body` (each line ending in a newline): into the gathered bytes when gathering,
    /// so a line need not become a `String` first; otherwise written at once.
    static func out(appending body: (inout [UInt8]) -> Void) {
        let wasGathered = gathered.withLock { buffer -> Bool in
            guard buffer != nil else { return false }
            body(&buffer!)
            if buffer!.count >= gatherLimit { writeAndEmpty(&buffer!) }
            return true
        }
        guard !wasGathered else { return }
        var bytes: [UInt8] = []
        body(&bytes)
        bytes.withUnsafeBytes { write($0, to: 1) }
    }

    /// Standard error, after whatever standard output was gathered, so the two keep their order on a terminal.
    static func err(_ line: String) {
        flush()
        write(line + "\n", to: 2)
    }

    /// From now on standard output is gathered, and written by `loop` (which must print nothing from other threads)
    /// at most `gatherDelay` after the first line gathered, and when the process exits (by returning from main or
    /// by `exit`).
    static func gatherLines(on loop: Reactor) {
        let first = gathered.withLock { buffer -> Bool in
            guard buffer == nil else { return false }
            buffer = []
            buffer!.reserveCapacity(gatherLimit + 1024)
            return true
        }
        if first { atexit { Console.flush() } }
        // Each time the loop is about to sleep: lines gathered in this turn get a timer to write them, unless one is
        // already armed; lines gathered long enough ago (the loop was busy) leave now.
        loop.beforeEachWait { [unowned loop] in
            let pending = gathered.withLock { $0?.isEmpty == false }
            guard pending else {
                oldestGathered = 0
                return
            }
            let now = MonotonicClock.now()
            if oldestGathered == 0 { oldestGathered = now }
            let deadline = oldestGathered &+ MonotonicClock.nanoseconds(fromSeconds: gatherDelay)
            if now >= deadline {
                flushTimer?.cancel()
                flushTimer = nil
                oldestGathered = 0
                flush()
            } else if flushTimer == nil {
                flushTimer = loop.callAt(deadline: deadline) {
                    flushTimer = nil
                    oldestGathered = 0
                    flush()
                }
            }
        }
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
