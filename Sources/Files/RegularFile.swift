#if canImport(Glibc)
import Glibc
#endif

/// Whole small files (poems, page assets) read in one go. Both the poetry and the HTTP server layers need it and
/// neither owns it; it has nothing to do with the event loop, so it lives below both, in a module of its own.
public enum RegularFile {
    public enum ReadError: Error, Equatable {
        case missing
        case notRegular
        /// A system call failed: which, and the C library's words for its errno.
        case failed(call: String, reason: String)
    }

    public static func read(_ path: String) throws(ReadError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw errno == ENOENT ? .missing : failure("open") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw .notRegular }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(info.st_size))
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 { throw failure("read") }
            guard count > 0 else { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        return bytes
    }

    private static func failure(_ call: String) -> ReadError {
        .failed(call: call, reason: String(cString: strerror(errno)))
    }
}
