#if canImport(Glibc)
import Glibc
#endif

/// Line output straight to the descriptors: each line leaves at once even when stdout is a pipe (a tee, a test),
/// which is the point of watching slow poetry arrive.
enum Console {
    static func out(_ line: String) { write(line + "\n", to: 1) }
    static func err(_ line: String) { write(line + "\n", to: 2) }

    private static func write(_ text: String, to fd: Int32) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                offset += written
            }
        }
    }
}
