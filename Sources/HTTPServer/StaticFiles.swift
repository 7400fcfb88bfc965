#if canImport(Glibc)
import Glibc
#endif
import Files
import HTTP1
import Reactor

/// Serves files under one directory with content types, `index.html`, ETag/If-None-Match (304), Last-Modified
/// and HEAD. Nothing outside the directory can be reached: encoded `..`, encoded slashes, NUL and symlinks that
/// lead out are all refused.
public final class StaticFiles {
    public let root: String
    private let realRoot: String?

    public init(root: String) {
        self.root = root
        realRoot = StaticFiles.realPath(root)
    }

    public func handle(_ request: HTTPRequest, _ writer: HTTPResponseWriter) {
        guard let file = resolve(request.path) else {
            writer.respond(status: .notFound, json: .error("not_found", "no such file: \(request.path)"))
            return
        }
        var info = stat()
        guard stat(file, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            writer.respond(status: .notFound, json: .error("not_found", "no such file: \(request.path)"))
            return
        }
        let etag = "\"\(String(info.st_size, radix: 16))-\(String(info.st_mtim.tv_sec, radix: 16))\""
        var headers = HTTPHeaders([
            ("Content-Type", Self.contentType(for: file)),
            ("ETag", etag),
            ("Last-Modified", HTTPDateCache.format(info.st_mtim.tv_sec)),
            ("Cache-Control", "no-cache"),
        ])
        if let match = request.headers["If-None-Match"],
           match == "*" || match.split(separator: ",").contains(where: { $0.trimmingSpaces() == etag || $0.trimmingSpaces() == "W/" + etag }) {
            writer.respond(status: .notModified, headers: headers)
            return
        }
        guard let body = try? RegularFile.read(file) else {
            writer.respond(status: .notFound, json: .error("not_found", "cannot read \(request.path)"))
            return
        }
        headers.add("X-Content-Type-Options", "nosniff")
        writer.respond(status: .ok, headers: headers, body: body)
    }

    /// Maps a request path to a file inside the root, or nil when it is not allowed or not there.
    func resolve(_ path: String) -> String? {
        guard let realRoot else { return nil }
        var parts: [String] = []
        for raw in path.split(separator: "/", omittingEmptySubsequences: true) {
            guard let part = QueryString.percentDecode(raw) else { return nil }
            // A decoded slash or NUL, or a dot segment, is an attempt to leave the path as written.
            guard !part.contains("/"), !part.contains("\0"), !part.contains("\\"), part != "..", part != "." else { return nil }
            parts.append(part)
        }
        var candidate = ([root] + parts).joined(separator: "/")
        var info = stat()
        if stat(candidate, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR {
            candidate += "/index.html"
        }
        // Symlinks are followed only if they stay inside the root.
        guard let real = Self.realPath(candidate), real == realRoot || real.hasPrefix(realRoot + "/") else { return nil }
        return real
    }

    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func contentType(for path: String) -> String {
        let ext = path.split(separator: ".").last.map { $0.lowercased() } ?? ""
        switch ext {
        case "html", "htm": return "text/html; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "json": return "application/json"
        case "yaml", "yml": return "application/yaml"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "ico": return "image/x-icon"
        case "txt": return "text/plain; charset=utf-8"
        default: return "application/octet-stream"
        }
    }
}
