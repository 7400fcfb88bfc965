// poetry-bench streams: opens N concurrent /api/fetch streams against a gateway, on the project's own reactor, and
// reports whether all completed and how late events arrived. Used by Benchmarks/stream_scale.py.
//
// Event delay: each NDJSON event carries `t`, seconds since its fetch started on the gateway. The client notes when
// each stream's `start` event arrived; an event's delay is (arrival − that moment) − t, so both clocks cancel out.
#if canImport(Glibc)
import Glibc
#endif
import Reactor

final class StreamClient: ConnectionHandler {
    let request: [UInt8]
    let stats: Stats
    var buffer: [UInt8] = []
    var startedAt: UInt64 = 0
    var sawSummary = false

    init(request: [UInt8], stats: Stats) {
        self.request = request
        self.stats = stats
    }

    func connectionMade(_ connection: TCPConnection) {
        connection.write(request)
    }

    func dataReceived(_ bytes: UnsafeRawBufferPointer) {
        let now = MonotonicClock.now()
        buffer.append(contentsOf: bytes)
        // Events are single lines; chunk framing lines never contain `{"event"`.
        while let newline = buffer.firstIndex(of: 0x0A) {
            let line = buffer[..<newline]
            if let start = line.firstIndex(of: UInt8(ascii: "{")) {
                handle(event: line[start...], at: now)
            }
            buffer.removeSubrange(...newline)
        }
    }

    private func handle(event: ArraySlice<UInt8>, at now: UInt64) {
        let text = String(decoding: event, as: UTF8.self)
        if text.hasPrefix("{\"event\":\"start\"") {
            startedAt = now
        } else if let range = text.firstRange(of: "\"t\":"), startedAt > 0 {
            let rest = text[range.upperBound...]
            let number = rest.prefix { $0 == "." || $0.isNumber }
            if let t = Double(number) {
                let sinceStart = MonotonicClock.seconds(fromNanoseconds: now - startedAt)
                stats.delays.append(max(0, sinceStart - t))
            }
        }
        if text.hasPrefix("{\"event\":\"summary\"") {
            sawSummary = true
            if text.contains("\"poems\":1") { stats.completed += 1 } else { stats.failed += 1 }
        }
    }

    func connectionLost(_ reason: ConnectionLossReason) {
        if !sawSummary { stats.broken += 1 }
        stats.finished += 1
        if stats.finished == stats.total { stats.reactor?.stop() }
    }

    func connectionFailed(_ error: ConnectError) {
        stats.broken += 1
        stats.finished += 1
        if stats.finished == stats.total { stats.reactor?.stop() }
    }
}

final class Stats {
    var total = 0
    var finished = 0
    var completed = 0
    var failed = 0
    var broken = 0
    var delays: [Double] = []
    weak var reactor: Reactor?
}

func main() throws {
    let arguments = CommandLine.arguments
    guard arguments.count == 5, arguments[1] == "streams", let port = UInt16(arguments[2]), let target = Int(arguments[3]),
          let count = Int(arguments[4]) else {
        print("usage: poetry-bench streams GATEWAY_PORT POETRY_PORT COUNT")
        exit(2)
    }
    let reactor = try Reactor()
    let stats = Stats()
    stats.total = count
    stats.reactor = reactor
    let request = Array("GET /api/fetch?targets=\(target)&format=ndjson&timeout=30 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
    let address = try SocketAddress(host: "127.0.0.1", port: port)
    for _ in 0..<count {
        TCPConnection.connect(reactor: reactor, to: address, timeout: 30, handler: StreamClient(request: request, stats: stats))
    }
    let start = MonotonicClock.now()
    try reactor.run()
    let elapsed = MonotonicClock.seconds(fromNanoseconds: MonotonicClock.now() - start)
    let sorted = stats.delays.sorted()
    func percentile(_ q: Double) -> Double { sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(q * Double(sorted.count)))] * 1000 }
    print("streams \(count): completed \(stats.completed), failed \(stats.failed), broken \(stats.broken) in \(elapsed) s")
    print("events \(sorted.count): delay p50 \(percentile(0.5)) ms, p99 \(percentile(0.99)) ms, max \(percentile(1)) ms")
}

try main()
