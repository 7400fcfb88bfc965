#if canImport(Glibc)
import Glibc
#endif
import Files
import Reactor

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
                let title = PoemCatalog.tidyTitle(String(decoding: firstLine, as: UTF8.self))
                found.append(Entry(name: String(name.dropLast(4)), title: title, bytes: bytes.count, path: path))
            }
            closedir(dir)
        }
        entries = found.sorted { $0.name < $1.name }
    }

    /// The first line as a title: trimmed, runs of spaces made one, and no space before a closing bracket or
    /// punctuation (the seed's alla_sera.txt begins "Alla Sera (To Evening )"; the file itself stays as the seed has it).
    static func tidyTitle(_ line: String) -> String {
        var title = ""
        for character in line.trimmingSpaces() {
            if character.isWhitespace {
                if title.last != " " { title.append(" ") }
            } else {
                if ")]},.;:!?".contains(character), title.last == " " { title.removeLast() }
                title.append(character)
            }
        }
        return title
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
        do {
            return try RegularFile.read(path)
        } catch {
            switch error {
            case .missing: throw FileError(path: path, reason: "No such file: \(path)")
            case .notRegular: throw FileError(path: path, reason: "Not a regular file: \(path)")
            case .failed(_, let reason): throw FileError(path: path, reason: "Cannot read \(path): \(reason)")
            }
        }
    }
}
