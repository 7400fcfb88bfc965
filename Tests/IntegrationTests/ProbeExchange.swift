#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// One conformance case sent over a raw socket the way `h1probe.py`'s `run_exchange` sends it: the bytes (reading
/// meanwhile, so a server that answers early and stops reading cannot wedge the send), then reading until the
/// server closes or goes quiet, then, when the case checks closing, waiting a while longer for the close.
///
/// The quiet periods are the probe's own: "no further response" can only be seen as nothing arriving for a
/// while, and a smuggled request's answer would follow the first within microseconds. They bound how long a
/// case waits for silence, never how fast the server must be (a first response is awaited for `responseWait`).
struct ProbeExchange {
    var data: [UInt8] = []
    var closed = false
    var sendError: String?

    /// Quiet period that ends the read once a response has arrived.
    static let idle = 1.0
    /// How long to wait for a first response.
    static let responseWait = 4.0
    /// Extra wait for the close, when the case checks it.
    static let closeWait = 3.0

    static func run(_ probeCase: ConformanceCase, port: UInt16) -> ProbeExchange {
        var exchange = ProbeExchange()
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else {
            exchange.sendError = "socket: errno \(errno)"
            return exchange
        }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            exchange.sendError = "connect: errno \(errno)"
            return exchange
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)

        exchange.send(probeCase.bytes, fd: fd)
        var last = now()
        var deadline = last + responseWait
        while !exchange.closed {
            let have = ProbeResponses.parse(exchange.data, methods: probeCase.methods ?? []).finals.count
            var quiet = have >= 1 ? idle : responseWait
            if have > probeCase.mostResponses { quiet = 0.2 }
            let moment = now()
            if moment - last >= quiet || moment > deadline + idle { break }
            if exchange.receive(fd: fd, wait: min(0.2, quiet)) {
                last = now()
                deadline = max(deadline, last + idle)
            }
        }
        if probeCase.wantsClose {
            let end = now() + closeWait
            while !exchange.closed && now() < end { _ = exchange.receive(fd: fd, wait: 0.2) }
        }
        return exchange
    }

    private mutating func send(_ bytes: [UInt8], fd: Int32) {
        var offset = 0
        let start = Self.now()
        while offset < bytes.count && !closed {
            var descriptor = pollfd(fd: fd, events: Int16(POLLOUT | POLLIN), revents: 0)
            guard poll(&descriptor, 1, 5000) > 0, descriptor.revents & Int16(POLLOUT) != 0 else {
                // Not writable: the server may have answered and stopped reading; take what it said.
                _ = receive(fd: fd, wait: 0)
                if Self.now() - start > 30 {
                    sendError = "send stalled"
                    return
                }
                continue
            }
            let sent = bytes[offset..<min(bytes.count, offset + 16384)].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { continue }
                sendError = "send: errno \(errno)"
                return
            }
            offset += sent
            _ = receive(fd: fd, wait: 0)
        }
    }

    /// Waits up to `wait` seconds for the socket to become readable, then reads once; whether anything happened.
    private mutating func receive(fd: Int32, wait: Double) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, Int32(wait * 1000)) > 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return false }
        if count <= 0 {
            closed = true
            return true
        }
        data.append(contentsOf: buffer[0..<count])
        return true
    }

    private static func now() -> Double { MonotonicClock.seconds(fromNanoseconds: MonotonicClock.now()) }
}
