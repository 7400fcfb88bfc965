#if canImport(Glibc)
import Glibc
#endif

/// The poems in a directory: `NAME.txt` files, titled by their first line.
public struct PoemCatalog: Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let title: String
        public let bytes: Int
        public let path: String
    }

    public let directory: String
    public let entries: [Entry]

    public init(directory: String) {
        self.directory = directory
        var found: [Entry] = []
        if let dir = opendir(directory) {
            while let item = readdir(dir) {
                let name = withUnsafeBytes(of: item.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                guard name.hasSuffix(".txt"), !name.hasPrefix(".") else { continue }
                let path = directory + "/" + name
                guard let bytes = try? PoemCatalog.read(path: path) else { continue }
                let firstLine = bytes.split(separator: UInt8(ascii: "\n"), maxSplits: 1).first.map { Array($0) } ?? []
                let title = String(decoding: firstLine, as: UTF8.self).trimmingSpaces()
                found.append(Entry(name: String(name.dropLast(4)), title: title, bytes: bytes.count, path: path))
            }
            closedir(dir)
        }
        entries = found.sorted { $0.name < $1.name }
    }

    public func entry(named name: String) -> Entry? {
        entries.first { $0.name == name }
    }

    public struct FileError: Error, CustomStringConvertible {
        public let path: String
        public let reason: String
        public var description: String { reason }
    }

    /// Reads a whole file; a missing one says `No such file: PATH`.
    public static func read(path: String) throws(FileError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw FileError(path: path, reason: errno == ENOENT ? "No such file: \(path)" : "Cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var stats = stat()
        guard fstat(fd, &stats) == 0, (stats.st_mode & S_IFMT) == S_IFREG else {
            throw FileError(path: path, reason: "Not a regular file: \(path)")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        return bytes
    }
}

extension String {
    func trimmingSpaces() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars = scalars.dropFirst() }
        while let last = scalars.last, last.isWhitespace { scalars = scalars.dropLast() }
        return String(scalars)
    }
}
