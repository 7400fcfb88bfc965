import Reactor

/// Answers one request, either at once (`respond`) or as a stream of chunks (`startStream`, `write`, `finish`).
/// Lives on the reactor thread. A streaming handler learns when the client reads slowly (`onWritabilityChanged`)
/// and when it has gone (`onClientGone`), so the work behind the stream can slow down or stop.
public final class HTTPResponseWriter {
    /// The request being answered; nil for the server's own error responses.
    public let requestHead: HTTPRequestHead?
    /// Strong while the response is open (the connection holds this writer as in flight, a cycle both ends break:
    /// the connection when the response completes, the writer when it is done or the client is gone).
    private var connection: HTTPServerConnection?

    private enum State { case pending, streaming, done }
    private var state = State.pending
    private var chunked = false
    private var suppressBody = false
    private var keepAlive: Bool

    /// Called with false when the client stops keeping up (the write buffer passed its high watermark) and with
    /// true when it has caught up.
    public var onWritabilityChanged: ((Bool) -> Void)?
    /// The status sent, once the head is written.
    public private(set) var status: HTTPStatus?
    /// A number the application may attach (the gateway's route index, for metrics).
    public var tag = -1
    /// Called once if the client disconnects before the response ends.
    public var onClientGone: (() -> Void)?

    init(connection: HTTPServerConnection, head: HTTPRequestHead?) {
        self.connection = connection
        self.requestHead = head
        keepAlive = head?.keepAlive ?? false
        suppressBody = head?.isHead ?? false
    }

    /// Whether a response may still be written and the client is still there.
    public var isOpen: Bool { state != .done && (connection?.isOpen ?? false) }
    /// False while the client is not keeping up.
    public var isWritable: Bool { connection?.isTransportWritable ?? false }

    // MARK: whole responses

    /// Sends a complete response. `closeAfter` ends the connection once it is written.
    public func respond(status: HTTPStatus, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [], closeAfter: Bool = false) {
        guard state == .pending, let connection else { return }
        if closeAfter { keepAlive = false }
        let server = connection.server
        let bodyAllowed = !suppressBody && status.code != 204 && status.code != 304
        server.scratch.removeAll(keepingCapacity: true)
        writeHead(into: &server.scratch, status: status, headers: headers,
                  framing: status.code == 204 || status.code == 304 ? .noBody : .length(body.count))
        if bodyAllowed { server.scratch.append(contentsOf: body) }
        server.scratch.withUnsafeBytes { connection.write($0) }
        complete()
    }

    public func respond(status: HTTPStatus, json: JSON, headers: HTTPHeaders = HTTPHeaders(), closeAfter: Bool = false) {
        var headers = headers
        headers.add("Content-Type", "application/json")
        respond(status: status, headers: headers, body: json.bytes, closeAfter: closeAfter)
    }

    public func respond(status: HTTPStatus, text: String, contentType: String = "text/plain; charset=utf-8") {
        respond(status: status, headers: HTTPHeaders([("Content-Type", contentType)]), body: Array(text.utf8))
    }

    // MARK: streams

    /// Sends the head of a streaming response. HTTP/1.1 clients get chunked encoding (each `write` is a chunk);
    /// HTTP/1.0 clients get the raw bytes and a close at the end.
    public func startStream(status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders()) {
        guard state == .pending, let connection else { return }
        let http11 = requestHead?.version == .http1_1
        chunked = http11
        if !http11 { keepAlive = false }
        let server = connection.server
        server.scratch.removeAll(keepingCapacity: true)
        writeHead(into: &server.scratch, status: status, headers: headers, framing: chunked ? .chunked : .untilClose)
        server.scratch.withUnsafeBytes { connection.write($0) }
        state = .streaming
    }

    /// Sends `bytes` now, as one chunk.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard state == .streaming, let connection, bytes.count > 0, !suppressBody else { return }
        guard chunked else {
            connection.write(bytes)
            return
        }
        let server = connection.server
        server.scratch.removeAll(keepingCapacity: true)
        appendHex(bytes.count, to: &server.scratch)
        server.scratch.append(contentsOf: [0x0D, 0x0A])
        server.scratch.append(contentsOf: bytes)
        server.scratch.append(contentsOf: [0x0D, 0x0A])
        server.scratch.withUnsafeBytes { connection.write($0) }
    }

    public func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    public func write(_ text: String) {
        var text = text
        text.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }

    /// Ends the stream with the last chunk.
    public func finish() {
        guard state == .streaming, let connection else { return }
        if chunked && !suppressBody {
            Self.lastChunk.withUnsafeBytes { connection.write($0) }
        }
        complete()
    }

    /// Drops the connection without finishing the response (a reset), e.g. at shutdown of an unanswered request.
    public func abortResponse() {
        guard state != .done else { return }
        state = .done
        connection?.abort()
        connection = nil
    }

    private static let lastChunk = Array("0\r\n\r\n".utf8)

    // MARK: internals

    private func complete() {
        state = .done
        let connection = self.connection
        self.connection = nil
        connection?.responseFinished(self, keepAlive: keepAlive)
    }

    func clientGone() {
        connection = nil
        guard state != .done else { return }
        state = .done
        onClientGone?()
        onClientGone = nil
        onWritabilityChanged = nil
    }

    func transportWritabilityChanged(_ writable: Bool) {
        onWritabilityChanged?(writable)
    }

    /// How the body is delimited: a length, chunks, the end of the connection (HTTP/1.0 streams), or no body.
    private enum Framing { case length(Int), chunked, untilClose, noBody }

    private func writeHead(into out: inout [UInt8], status: HTTPStatus, headers: HTTPHeaders, framing: Framing) {
        guard let connection else { return }
        let server = connection.server
        self.status = status
        server.onResponse?(self)
        out.append(contentsOf: Self.statusLinePrefix)
        out.append(contentsOf: String(status.code).utf8)
        out.append(0x20)
        out.append(contentsOf: status.reason.utf8)
        out.append(contentsOf: [0x0D, 0x0A])
        var userSetConnection = false
        for (name, value) in headers {
            if equalsLowercase(name.utf8, "connection") {
                userSetConnection = true
                if value.lowercased().contains("close") { keepAlive = false }
            }
            appendHeader(name, value, to: &out)
        }
        out.append(contentsOf: Self.dateName)
        out.append(contentsOf: server.dateCache.current())
        out.append(contentsOf: [0x0D, 0x0A])
        out.append(contentsOf: Self.serverName)
        out.append(contentsOf: server.config.serverName.utf8)
        out.append(contentsOf: [0x0D, 0x0A])
        switch framing {
        case .length(let count):
            out.append(contentsOf: Self.contentLengthName)
            out.append(contentsOf: String(count).utf8)
            out.append(contentsOf: [0x0D, 0x0A])
        case .chunked:
            out.append(contentsOf: Self.chunkedHeader)
        case .untilClose, .noBody:
            break
        }
        if !userSetConnection {
            if !keepAlive {
                out.append(contentsOf: Self.connectionClose)
            } else if requestHead?.version == .http1_0 {
                out.append(contentsOf: Self.connectionKeepAlive)
            }
        }
        out.append(contentsOf: [0x0D, 0x0A])
    }

    private func appendHeader(_ name: String, _ value: String, to out: inout [UInt8]) {
        out.append(contentsOf: name.utf8)
        out.append(contentsOf: [0x3A, 0x20])
        // Never let a value smuggle a line break into the head.
        for byte in value.utf8 where byte != 0x0D && byte != 0x0A { out.append(byte) }
        out.append(contentsOf: [0x0D, 0x0A])
    }

    private func appendHex(_ value: Int, to out: inout [UInt8]) {
        let digits = Array("0123456789abcdef".utf8)
        var shift = (Int.bitWidth - value.leadingZeroBitCount + 3) / 4 * 4 - 4
        if shift < 0 { shift = 0 }
        while shift >= 0 {
            out.append(digits[(value >> shift) & 0xF])
            shift -= 4
        }
    }

    private static let statusLinePrefix = Array("HTTP/1.1 ".utf8)
    private static let dateName = Array("Date: ".utf8)
    private static let serverName = Array("Server: ".utf8)
    private static let contentLengthName = Array("Content-Length: ".utf8)
    private static let chunkedHeader = Array("Transfer-Encoding: chunked\r\n".utf8)
    private static let connectionClose = Array("Connection: close\r\n".utf8)
    private static let connectionKeepAlive = Array("Connection: keep-alive\r\n".utf8)
}
