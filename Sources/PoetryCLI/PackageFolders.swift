#if canImport(Glibc)
import Glibc
#endif
import Poetry

/// Where the gateway's poems and page are, whatever the working directory: the folders given on the command line,
/// else the package's own `poetry/` and `public/`, found beside the executable (in a folder above it, as for
/// `.build/debug/poetry` in a checkout) or installed beside it (`PREFIX/share/poetry-gateway/` for
/// `PREFIX/bin/poetry`). Never the working directory by accident: a gateway started elsewhere would otherwise serve
/// no page and no poems without a word.
enum PackageFolders {
    struct Failure: Error { let message: String }

    static func locate(poetry: String?, public: String?) throws(Failure) -> (poetry: String, public: String) {
        if let poetry { try check(poetry, flag: "--poetry-dir", needsPoems: true) }
        if let `public` { try check(`public`, flag: "--public-dir", needsPoems: false) }
        if let poetry, let `public` { return (poetry, `public`) }
        let places = candidates()
        guard let root = places.first(where: { isDirectory("\($0)/poetry") && isDirectory("\($0)/public") }) else {
            let executable = executablePath() ?? "the executable"
            throw Failure(message: "cannot find the poems and the page: no poetry/ and public/ folders in \(places.joined(separator: ", ")) "
                + "(the folders around \(executable)); give --poetry-dir and --public-dir")
        }
        return (poetry ?? "\(root)/poetry", `public` ?? "\(root)/public")
    }

    /// Each folder above the executable's, nearest first, then `share/poetry-gateway` beside its `bin`.
    static func candidates() -> [String] {
        guard let executable = executablePath() else { return [] }
        var folders: [String] = []
        var folder = parent(of: executable)
        while true {
            folders.append(folder)
            if folder == "/" { break }
            folder = parent(of: folder)
        }
        folders.append("\(parent(of: parent(of: executable)))/share/poetry-gateway".replacingDoubleSlash())
        return folders
    }

    private static func check(_ path: String, flag: String, needsPoems: Bool) throws(Failure) {
        guard isDirectory(path) else { throw Failure(message: "\(flag) \(path): no such folder") }
        if needsPoems && PoemCatalog(directory: path).entries.isEmpty {
            throw Failure(message: "\(flag) \(path): no poems (NAME.txt) in that folder")
        }
    }

    private static func executablePath() -> String? {
        guard let resolved = realpath("/proc/self/exe", nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    private static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }
}

private extension String {
    func replacingDoubleSlash() -> String {
        hasPrefix("//") ? String(dropFirst()) : self
    }
}
