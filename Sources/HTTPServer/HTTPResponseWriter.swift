import HTTP1
import Reactor

// @exclusivity(unchecked) marks hot-path state that is confined to the reactor thread and never accessed in
// overlapping ways (each access is a plain read or write with no call inside it), so the runtime exclusivity
// check, about a sixth of the server's user-space instructions per request (BENCHMARKS.md), guards nothing here.
public final class HTTPResponseWriter {
    /// The version of the request being answered; nil for the server's own error responses. Only what the
    /// response needs is kept from the head, so no copy of it lives as long as the writer.
    @exclusivity(unchecked) private var requestVersion: HTTPVersion?
    /// Strong while the response is open (the connection holds this writer as in flight, a cycle both ends break:
    /// the connection when the response completes, the writer when it is done or the client is gone).
    @exclusivity(unchecked) private var connection: HTTPServerConnection?

    private enum State { case pending, streaming, done }
    @exclusivity(unchecked) private var state = State.pending
    @exclusivity(unchecked) private var chunked = false
    @exclusivity(unchecked) private var suppressBody = false
    @exclusivity(unchecked) private var keepAlive: Bool

    /// Called with false when the client stops keeping up (the write buffer passed its high watermark) and with
    /// true when it has caught up.
    @exclusivity(unchecked) public var onWritabilityChanged: ((Bool) -> Void)?
    /// The status sent, once the head is written.
    @exclusivity(unchecked) public private(set) var status: HTTPStatus?
    /// A number the application may attach (the gateway's route index, for metrics).
    @exclusivity(unchecked) public private(set) var tag = -1

    /// Sets `tag`. A method the optimiser may not inline: another module that sets the property directly gets a
    /// runtime exclusivity check compiled in, whatever the declaration says (callgrind: ~60 instructions a request).
    @inline(never)
    public func setTag(_ value: Int) {
        tag = value
    }
    /// Called once if the client disconnects before the response ends.
    @exclusivity(unchecked) public var onClientGone: (() -> Void)?

    /// A writer for a request (its version, whether it may keep the connection, whether it is a HEAD), or for the
    /// server's own refusal of one (no version: the connection closes after it).
    init(connection: HTTPServerConnection, version: HTTPVersion? = nil, keepAlive: Bool = false, isHead: Bool = false) {
        self.connection = connection
        requestVersion = version
        self.keepAlive = keepAlive
        suppressBody = isHead
    }

    /// Readies a finished writer for the connection's next request, as if new. The connection calls this only when
    /// it holds the sole reference, so no one can tell the difference; it saves an allocation per request.
    func reuse(connection: HTTPServerConnection, version: HTTPVersion, keepAlive: Bool, isHead: Bool) {
        self.connection = connection
        requestVersion = version
        self.keepAlive = keepAlive
        suppressBody = isHead
        state = .pending
        chunked = false
        status = nil
        tag = -1
        onWritabilityChanged = nil
        onClientGone = nil
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
        announce(status, server)
        // Small bodies go out with the head in one send; large ones follow it, so the area stays small.
        let bodyInline = bodyAllowed && body.count <= Self.inlineBodyLimit
        var out = server.output.cursor(reserving: headSize(server, status, headers) + (bodyInline ? body.count : 0))
        writeHead(into: &out, server: server, status: status, headers: headers,
                  framing: status.code == 204 || status.code == 304 ? .noBody : .length(body.count))
        if bodyInline { body.withUnsafeBufferPointer { out.write($0) } }
        connection.write(out.bytes)
        if bodyAllowed && !bodyInline {
            connection.needsNoDelay()
            body.withUnsafeBytes { connection.write($0) }
        }
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
        let http11 = requestVersion == .http1_1
        chunked = http11
        if !http11 { keepAlive = false }
        let server = connection.server
        connection.needsNoDelay()
        announce(status, server)
        var out = server.output.cursor(reserving: headSize(server, status, headers))
        writeHead(into: &out, server: server, status: status, headers: headers, framing: chunked ? .chunked : .untilClose)
        connection.write(out.bytes)
        state = .streaming
        connection.responseStarted()
    }

    /// Sends `bytes` now, as one chunk.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard state == .streaming, let connection, bytes.count > 0, !suppressBody else { return }
        guard chunked else {
            connection.write(bytes)
            return
        }
        let inline = bytes.count <= Self.inlineBodyLimit
        var out = connection.server.output.cursor(reserving: (inline ? bytes.count : 0) + 24)
        out.writeHex(bytes.count)
        out.write("\r\n")
        if inline {
            out.write(bytes)
        } else {
            connection.write(out.bytes)
            connection.write(bytes)
            out = connection.server.output.cursor(reserving: 2)
        }
        out.write("\r\n")
        connection.write(out.bytes)
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
            let last: StaticString = "0\r\n\r\n"
            connection.write(UnsafeRawBufferPointer(start: last.utf8Start, count: last.utf8CodeUnitCount))
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

    // MARK: internals

    private static let inlineBodyLimit = 16 * 1024

    private func complete() {
        state = .done
        // Neither can fire once the response is complete; dropping them lets what they captured go now rather
        // than when the connection reuses this writer.
        onClientGone = nil
        onWritabilityChanged = nil
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

    /// Records the status and tells the server's hook, before the head is built (the hook is outside code, so it
    /// runs while no buffer of ours is being written).
    private func announce(_ status: HTTPStatus, _ server: HTTPServer) {
        self.status = status
        server.onResponse?(status, tag)
    }

    /// Room the head needs: the fixed lines (status, Date, Server, framing, Connection) fit in 256 bytes with the
    /// server name counted apart.
    private func headSize(_ server: HTTPServer, _ status: HTTPStatus, _ headers: HTTPHeaders) -> Int {
        256 + server.serverHeader.count + status.statusLine.count + headers.encoded.count
    }

    private func writeHead(into out: inout ByteCursor, server: HTTPServer, status: HTTPStatus, headers: HTTPHeaders, framing: Framing) {
        status.statusLine.withUnsafeBufferPointer { out.write($0) }
        headers.encoded.withUnsafeBufferPointer { out.write($0) }
        if headers.asksToClose { keepAlive = false }
        out.write("Date: ")
        server.dateCache.write(to: &out)
        out.write("\r\n")
        server.serverHeader.withUnsafeBufferPointer { out.write($0) }
        switch framing {
        case .length(let count):
            out.write("Content-Length: ")
            out.writeDecimal(count)
            out.write("\r\n")
        case .chunked:
            out.write("Transfer-Encoding: chunked\r\n")
        case .untilClose, .noBody:
            break
        }
        if !headers.setsConnection {
            if !keepAlive {
                out.write("Connection: close\r\n")
            } else if requestVersion == .http1_0 {
                out.write("Connection: keep-alive\r\n")
            }
        }
        out.write("\r\n")
    }
}
