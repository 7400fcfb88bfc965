import HTTP1
import HTTPServer
import Poetry

/// How a fetch stream is written: the CLI's lines, one JSON object per line, or Server-Sent Events.
enum FetchFormat: String, CaseIterable {
    case text
    case ndjson
    case sse

    var contentType: String {
        switch self {
        case .text: return "text/plain; charset=utf-8"
        case .ndjson: return "application/x-ndjson"
        case .sse: return "text/event-stream"
        }
    }

    /// The media type alone, as `Accept` names it.
    var mediaType: String {
        switch self {
        case .text: return "text/plain"
        case .ndjson: return "application/x-ndjson"
        case .sse: return "text/event-stream"
        }
    }

    /// `format=` wins; otherwise the Accept header, weights and all (RFC 9110 §12.5.1): the highest quality, then
    /// the most specific range (`text/event-stream, */*` is SSE), then text, NDJSON, SSE in that order; 406 when
    /// every format has quality 0 or matches nothing. No Accept: text.
    static func choose(query: String?, accept: String?) throws(GatewayError) -> FetchFormat {
        if let query {
            switch query {
            case "text", "plain", "text/plain": return .text
            case "ndjson", "application/x-ndjson": return .ndjson
            case "sse", "event-stream", "text/event-stream": return .sse
            default: throw .badRequest("unknown format '\(query)': use text, ndjson or sse")
            }
        }
        guard let accept, !accept.allSatisfy({ $0 == " " || $0 == "\t" }) else { return .text }
        let header = try AcceptHeader(accept)
        var best: (format: FetchFormat, quality: Double, specificity: Int)?
        for format in allCases {
            guard let (quality, specificity) = header.quality(of: format.mediaType), quality > 0 else { continue }
            if best == nil || quality > best!.quality || (quality == best!.quality && specificity > best!.specificity) {
                best = (format, quality, specificity)
            }
        }
        guard let best else { throw .noAcceptableMediaType(offered: allCases.map(\.mediaType)) }
        return best.format
    }
}

/// Turns fetch events into the bytes of one stream format.
///
/// SSE events carry `id: FETCH-N` (N counting from 1) and the stream opens with `retry:`, so an EventSource that
/// reconnects once the stream ends says `Last-Event-ID`, which the gateway answers with 204 No Content: the HTML
/// standard's way to tell it to stop, rather than re-running the fetch forever.
struct FetchEventEncoder {
    let format: FetchFormat
    private var transcript: SeedTranscript
    /// The fetch's id (`X-Fetch-Id`), the first part of every SSE event id.
    private let fetchID: Int
    private var eventsWritten = 0
    /// How long an EventSource waits before reconnecting; the reconnect only fetches its 204.
    static let sseRetryMilliseconds = 1000

    init(format: FetchFormat, mode: FetchMode, fetchID: Int = 0) {
        self.format = format
        transcript = SeedTranscript(mode: mode)
        self.fetchID = fetchID
    }

    /// `retry:` before the first event, then the event's `id:` and name.
    private mutating func sseFields(_ name: String, into out: inout [UInt8]) {
        if eventsWritten == 0 { out.append(contentsOf: "retry: \(Self.sseRetryMilliseconds)\n".utf8) }
        eventsWritten += 1
        out.append(contentsOf: "id: \(fetchID)-\(eventsWritten)\nevent: \(name)\ndata: ".utf8)
    }

    mutating func encode(_ event: FetchEvent, into out: inout [UInt8]) {
        switch format {
        case .text:
            for line in transcript.lines(for: event) {
                out.append(contentsOf: line.utf8)
                out.append(0x0A)
            }
        case .ndjson:
            Self.json(for: event).write(to: &out)
            out.append(0x0A)
        case .sse:
            sseFields(Self.name(of: event), into: &out)
            Self.json(for: event).write(to: &out)
            out.append(contentsOf: [0x0A, 0x0A])
        }
    }

    /// The final words when the gateway stops mid-stream.
    mutating func encodeShutdown(into out: inout [UInt8]) {
        let message = "the gateway is shutting down"
        switch format {
        case .text:
            out.append(contentsOf: "Gateway shutting down: fetch cancelled\n".utf8)
        case .ndjson:
            JSON.object([("event", "shutdown"), ("message", .string(message))]).write(to: &out)
            out.append(0x0A)
        case .sse:
            sseFields("shutdown", into: &out)
            JSON.object([("event", "shutdown"), ("message", .string(message))]).write(to: &out)
            out.append(contentsOf: [0x0A, 0x0A])
        }
    }

    static func name(of event: FetchEvent) -> String {
        switch event {
        case .started: return "start"
        case .connecting: return "connecting"
        case .connected: return "connected"
        case .received: return "data"
        case .finished: return "done"
        case .failed: return "failed"
        case .summary: return "summary"
        case .wakeup: return "wakeup"
        case .blocked: return "blocked"
        }
    }

    static func json(for event: FetchEvent) -> JSON {
        switch event {
        case .started(let mode, let tasks):
            return .object([
                ("event", "start"), ("mode", .string(mode.rawValue)),
                ("tasks", .array(tasks.map { .object([("task", .int($0.number)), ("address", .string($0.address.description))]) })),
            ])
        case .connecting(let task, let t):
            return .object([("event", "connecting"), ("task", .int(task)), ("t", .double(t))])
        case .connected(let task, let t):
            return .object([("event", "connected"), ("task", .int(task)), ("t", .double(t))])
        case .received(let task, let bytes, let received, let t):
            return .object([("event", "data"), ("task", .int(task)), ("bytes", .int(bytes)), ("received", .int(received)), ("t", .double(t))])
        case .finished(let task, let bytes, let poem, let t):
            var members: [(String, JSON)] = [("event", "done"), ("task", .int(task)), ("bytes", .int(bytes)), ("t", .double(t))]
            // The text only when the whole poem was kept (the gateway's text budget, or a client that was behind,
            // can leave it out); bytes that are not UTF-8 arrive as U+FFFD, and the event says so.
            guard poem.count == bytes else { return .object(members) }
            let text = String(validating: poem, as: UTF8.self)
            members.append(("poem", .string(text ?? String(decoding: poem, as: UTF8.self))))
            if text == nil { members.append(("invalidUTF8", true)) }
            return .object(members)
        case .failed(let task, let reason, let t):
            return .object([("event", "failed"), ("task", .int(task)), ("message", .string(reason)), ("t", .double(t))])
        case .summary(let poems, let failed, let elapsed):
            return .object([("event", "summary"), ("poems", .int(poems)), ("failed", .int(failed)), ("elapsed", .double(elapsed))])
        case .wakeup(let ready, let bytes, let t, let slept):
            return .object([("event", "wakeup"), ("ready", .int(ready)), ("bytes", .int(bytes)), ("t", .double(t)), ("slept", .double(slept))])
        case .blocked(let task, let call, let t, let seconds):
            return .object([("event", "blocked"), ("task", .int(task)), ("call", .string(call.rawValue)), ("t", .double(t)),
                            ("seconds", .double(seconds))])
        }
    }
}
