#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Gateway
import HTTP1
import HTTPServer
import Reactor
import Synchronization
import TestSupport

/// An HTTP server on a background reactor with a handful of routes for exercising the server itself.
/// @unchecked Sendable: the server is reached only on its reactor's thread, through `sync`; the rest is set once.
final class TestHTTPServer: @unchecked Sendable {
    let loop: BackgroundReactor
    let port: UInt16
    private let server: Confined<HTTPServer>

    init(config: HTTPServerConfig = HTTPServerConfig(), publicDir: String = "\(projectRoot)/public", backend: BackendKind = .epoll) throws {
        loop = try BackgroundReactor(backend: backend)
        let reactor = loop.reactor
        let built = try loop.sync { () -> Confined<HTTPServer> in
            let router = Router()
            let files = StaticFiles(root: publicDir)
            router.fallback = { files.handle($0, $1) }
            router.get("/hello") { _, _, writer in writer.respond(status: .ok, text: "hello\n") }
            router.post("/echo") { request, _, writer in
                writer.respond(status: .ok, headers: HTTPHeaders([("Content-Type", "application/octet-stream")]), body: request.body)
            }
            router.get("/items/{id}") { request, parameters, writer in
                writer.respond(status: .ok, json: ["id": .string(parameters["id"] ?? ""), "q": .string(request.query("q") ?? "")])
            }
            // `/kept` holds on to its request and writer; `/stale` then checks that neither was recycled for a
            // later request on the same connection (the server reuses both only when nothing else holds them).
            final class Kept { var items: [(HTTPRequest, HTTPResponseWriter)] = [] }
            let kept = Kept()
            router.get("/kept") { request, _, writer in
                kept.items.append((request, writer))
                writer.respond(status: .ok, text: "kept \(kept.items.count)\n")
            }
            router.get("/stale") { _, _, writer in
                guard let (request, old) = kept.items.first else { return writer.respond(status: .notFound, text: "none\n") }
                old.respond(status: .conflict, text: "the kept writer answered again\n")
                writer.respond(status: .ok, json: ["mark": .string(request.headers["X-Mark"] ?? ""), "path": .string(request.path),
                                                   "query": .string(request.query("q") ?? "")])
            }
            // Five chunks, 50 ms apart: each must reach the client as it is written.
            router.get("/stream") { _, _, writer in
                writer.startStream(headers: HTTPHeaders([("Content-Type", "text/plain")]))
                var sent = 0
                func next() {
                    guard writer.isOpen else { return }
                    writer.write("chunk \(sent)\n")
                    sent += 1
                    if sent == 5 { writer.finish() } else { reactor.callLater(0.05, next) }
                }
                next()
            }
            let server = try HTTPServer(reactor: reactor, address: SocketAddress(host: "127.0.0.1", port: 0), config: config) {
                router.handle($0, $1)
            }
            return Confined(value: server)
        }
        server = built
        port = try loop.sync { built.value.port }
    }

    var url: String { "http://127.0.0.1:\(port)" }

    var stats: HTTPServerStats { (try? loop.sync { [server] in server.value.stats }) ?? HTTPServerStats() }

    func stop() { loop.stop() }
}

/// A raw TCP client for what libcurl will not send: smuggling shapes, malformed lines, slow heads.
final class RawClient {
    let fd: Int32

    /// `receiveBuffer`: a small socket receive buffer, for a client that should stop taking bytes soon after it
    /// stops reading (the kernel would otherwise absorb megabytes on loopback).
    init(port: UInt16, receiveBuffer: Int32? = nil) throws {
        fd = try Socket.makeStream(for: SocketAddress(host: "127.0.0.1", port: port), nonBlocking: false)
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        let connected = try SocketAddress(host: "127.0.0.1", port: port).withSockAddr { connect(fd, $0, $1) }
        guard connected == 0 else { throw SystemError.last("connect") }
        Socket.setTimeouts(fd, seconds: 5)
    }

    deinit { close(fd) }

    /// Hangs up both ways, as a client that is done.
    func hangUp() { shutdown(fd, Int32(SHUT_RDWR)) }

    func send(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    func send(bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Reads until the server closes (or `limit` seconds pass); returns what came and whether it closed.
    func readUntilClosed(limit: Double = 5) -> (text: String, closed: Bool) {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let end = MonotonicClock.now() + MonotonicClock.nanoseconds(fromSeconds: limit)
        while MonotonicClock.now() < end {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let remaining = Int32((end - min(end, MonotonicClock.now())) / 1_000_000)
            guard poll(&pfd, 1, max(1, remaining)) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return (String(decoding: data, as: UTF8.self), true) }
            data.append(contentsOf: buffer[0..<count])
        }
        return (String(decoding: data, as: UTF8.self), false)
    }

    /// Reads until `count` complete responses with a Content-Length body have arrived (or the connection ends, or
    /// nothing comes for 10 s); returns how many did.
    func readResponses(_ count: Int) -> Int {
        readResponses(count, keepingText: false).count
    }

    /// The text of the next `count` responses (waiting as `readResponses` does).
    func readResponseTexts(_ count: Int) -> String {
        readResponses(count, keepingText: true).text
    }

    /// Whatever arrives until nothing more comes for `seconds` (for a client that interleaves sending and reading).
    func readAvailable(waitingUpTo seconds: Double) -> String {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while poll(&pfd, 1, Int32(seconds * 1000)) > 0 {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: data, as: UTF8.self)
    }

    private func readResponses(_ count: Int, keepingText: Bool) -> (count: Int, text: String) {
        var kept: [UInt8] = []
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var complete = 0
        var offset = 0
        while complete < count {
            // Count the responses complete in what has arrived.
            while let headEnd = data[offset...].firstRange(of: [13, 10, 13, 10]) {
                let head = String(decoding: data[offset..<headEnd.lowerBound], as: UTF8.self).lowercased()
                let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                    .flatMap { Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) } ?? 0
                guard data.count >= headEnd.upperBound + length else { break }
                offset = headEnd.upperBound + length
                complete += 1
            }
            if complete >= count { break }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, 10_000) > 0 else { break }
            let read = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if read <= 0 { break }
            data.append(contentsOf: buffer[0..<read])
            if offset > 1 << 20 {
                if keepingText { kept += data[..<offset] }
                data.removeFirst(offset)
                offset = 0
            }
        }
        if keepingText { kept += data[..<offset] }
        return (complete, String(decoding: kept, as: UTF8.self))
    }
}

extension String {
    /// Status codes of every response in a raw byte stream, in order.
    var statusCodes: [Int] {
        matches(of: #/HTTP\/1\.1 (\d{3}) /#).compactMap { Int($0.output.1) }
    }
}
