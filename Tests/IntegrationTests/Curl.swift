import CCurl
#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// What libcurl saw of one transfer.
struct CurlResponse {
    var status = 0
    var headers: [(name: String, value: String)] = []
    var body: [UInt8] = []
    /// Monotonic seconds at which each piece of the body arrived.
    var arrivals: [Double] = []
    /// New connections this transfer opened (0 when it reused one).
    var newConnections = 0
    var error: String?

    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        headers.last { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// Collects what the callbacks deliver; reached from C through an unmanaged pointer.
private final class Sink {
    var response = CurlResponse()
    /// Called with the body so far after each piece; return false to abort the transfer.
    var onData: ((CurlResponse) -> Bool)?
}

private let writeBody: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { data, size, count, context in
    let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    if let data, length > 0 {
        sink.response.body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: length))
    }
    sink.response.arrivals.append(MonotonicClock.seconds(fromNanoseconds: MonotonicClock.now()))
    if let onData = sink.onData, !onData(sink.response) { return 0 }
    return length
}

private let writeHeader: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = { data, size, count, context in
    let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
    let length = size * count
    guard let data else { return length }
    let line = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    if line.hasPrefix("HTTP/") {
        sink.response.headers.removeAll()  // a new response (after 100 Continue)
    } else if let colon = line.firstIndex(of: ":") {
        let name = String(line[..<colon])
        let value = line[line.index(after: colon)...].trimmingSpaces()
        sink.response.headers.append((name, value))
    }
    return length
}

/// One libcurl easy handle. Reusing it keeps the connection alive between requests, as a browser would.
final class CurlClient {
    private let handle: UnsafeMutableRawPointer

    init() {
        _ = CurlClient.globalInit
        handle = curl_easy_init()
    }

    deinit {
        curl_easy_cleanup(handle)
    }

    static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()

    @discardableResult
    func request(_ method: String, _ url: String, headers: [String] = [], body: [UInt8]? = nil,
                 timeout: Double = 20, onData: ((CurlResponse) -> Bool)? = nil) -> CurlResponse {
        let sink = Sink()
        sink.onData = onData
        let context = Unmanaged.passUnretained(sink).toOpaque()
        configure(handle, method: method, url: url, body: body, timeout: timeout, context: context)
        var list: UnsafeMutablePointer<curl_slist>?
        // A body is JSON unless the test says otherwise (libcurl would call it a form).
        let typed = body == nil || headers.contains { $0.lowercased().hasPrefix("content-type:") }
        for header in headers + (typed ? [] : ["Content-Type: application/json"]) { list = curl_slist_append(list, header) }
        ccurl_setopt_ptr(handle, CURLOPT_HTTPHEADER, list)
        let result = withExtendedLifetime(body) { curl_easy_perform(handle) }
        curl_slist_free_all(list)
        ccurl_setopt_ptr(handle, CURLOPT_HTTPHEADER, nil)
        finish(handle, result: result, into: &sink.response)
        return sink.response
    }

    @discardableResult
    func request(_ url: String, headers: [String] = [], timeout: Double = 20, onData: ((CurlResponse) -> Bool)? = nil) -> CurlResponse {
        request("GET", url, headers: headers, body: nil, timeout: timeout, onData: onData)
    }

    /// Runs transfers at once through the multi interface; returns them in the order given.
    static func concurrent(_ urls: [String], timeout: Double = 30) -> [CurlResponse] {
        _ = globalInit
        let multi = curl_multi_init()
        var easies: [UnsafeMutableRawPointer] = []
        var sinks: [Sink] = []
        for url in urls {
            let easy = curl_easy_init()!
            let sink = Sink()
            configure(easy, method: "GET", url: url, body: nil, timeout: timeout, context: Unmanaged.passUnretained(sink).toOpaque())
            curl_multi_add_handle(multi, easy)
            easies.append(easy)
            sinks.append(sink)
        }
        var running: Int32 = 1
        while running > 0 {
            curl_multi_perform(multi, &running)
            if running > 0 { curl_multi_poll(multi, nil, 0, 100, nil) }
        }
        var pending: Int32 = 0
        while let message = curl_multi_info_read(multi, &pending) {
            guard message.pointee.msg == CURLMSG_DONE, let index = easies.firstIndex(where: { $0 == message.pointee.easy_handle }) else { continue }
            finish(easies[index], result: message.pointee.data.result, into: &sinks[index].response)
        }
        for easy in easies {
            curl_multi_remove_handle(multi, easy)
            curl_easy_cleanup(easy)
        }
        curl_multi_cleanup(multi)
        return sinks.map(\.response)
    }

    private static func configure(_ handle: UnsafeMutableRawPointer, method: String, url: String, body: [UInt8]?, timeout: Double,
                                  context: UnsafeMutableRawPointer) {
        ccurl_setopt_str(handle, CURLOPT_URL, url)
        ccurl_setopt_write(handle, writeBody)
        ccurl_setopt_ptr(handle, CURLOPT_WRITEDATA, context)
        ccurl_setopt_header(handle, writeHeader)
        ccurl_setopt_ptr(handle, CURLOPT_HEADERDATA, context)
        ccurl_setopt_long(handle, CURLOPT_TIMEOUT_MS, Int(timeout * 1000))
        ccurl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        ccurl_setopt_long(handle, CURLOPT_HTTPGET, 1)
        ccurl_setopt_long(handle, CURLOPT_NOBODY, method == "HEAD" ? 1 : 0)
        if method != "GET" && method != "HEAD" {
            ccurl_setopt_str(handle, CURLOPT_CUSTOMREQUEST, method)
        } else {
            ccurl_setopt_ptr(handle, CURLOPT_CUSTOMREQUEST, nil)
        }
        if let body {
            body.withUnsafeBytes { raw in
                ccurl_setopt_long(handle, CURLOPT_POSTFIELDSIZE, raw.count)
                // COPYPOSTFIELDS copies, so the array need not outlive this call.
                ccurl_setopt_ptr(handle, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
            }
            if method != "POST" { ccurl_setopt_str(handle, CURLOPT_CUSTOMREQUEST, method) }
        }
    }

    private func configure(_ handle: UnsafeMutableRawPointer, method: String, url: String, body: [UInt8]?, timeout: Double,
                           context: UnsafeMutableRawPointer) {
        Self.configure(handle, method: method, url: url, body: body, timeout: timeout, context: context)
    }

    private static func finish(_ handle: UnsafeMutableRawPointer, result: CURLcode, into response: inout CurlResponse) {
        var status = 0
        ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        response.status = status
        var connects = 0
        ccurl_getinfo_long(handle, CURLINFO_NUM_CONNECTS, &connects)
        response.newConnections = connects
        if result != CURLE_OK { response.error = String(cString: curl_easy_strerror(result)) }
    }

    private func finish(_ handle: UnsafeMutableRawPointer, result: CURLcode, into response: inout CurlResponse) {
        Self.finish(handle, result: result, into: &response)
    }
}
