import Reactor

/// How a fetch visits its servers: one after another (the seed's blocking client), one thread per server with
/// blocking sockets (part 1's threaded model), or all at once on the reactor.
public enum FetchMode: String, Sendable, CaseIterable {
    case blocking
    case threaded
    case async
}

/// One poem to fetch: its task number (from 1, in the order given) and where from.
public struct FetchTask: Sendable, Equatable {
    public let number: Int
    public let address: SocketAddress
    /// Tried when `address` refuses the connection: `localhost` is 127.0.0.1, then ::1, as curl tries it.
    public let fallback: SocketAddress?

    public init(number: Int, address: SocketAddress, fallback: SocketAddress? = nil) {
        self.number = number
        self.address = address
        self.fallback = fallback
    }
}

/// What happens during a fetch, as it happens. The CLI prints these as the seed's lines; the gateway streams the
/// same values as text, NDJSON or SSE, so the two can never disagree. `t` is seconds since the fetch started,
/// on the monotonic clock.
public enum FetchEvent: Sendable, Equatable {
    case started(mode: FetchMode, tasks: [FetchTask])
    /// A task begins connecting (the blocking client's "get poetry from" moment).
    case connecting(task: Int, t: Double)
    case connected(task: Int, t: Double)
    /// `bytes` arrived in one read; `received` is the task's total so far.
    case received(task: Int, bytes: Int, received: Int, t: Double)
    /// The server closed after sending the whole poem: `bytes` long, its bytes in `poem` unless the fetch was
    /// told not to keep them (a fan-out of thousands need not hold every poem).
    case finished(task: Int, bytes: Int, poem: [UInt8], t: Double)
    case failed(task: Int, reason: String, t: Double)
    /// Always last.
    case summary(poems: Int, failed: Int, elapsed: Double)
    /// Async only: one wake-up of the reactor in which this fetch's sockets had events. `ready` sockets had
    /// events, `bytes` were read in it; `t` is when the loop woke, `slept` the time since this fetch's previous
    /// wake-up (or its start) during which it had nothing to do. Reported once the wake-up is over.
    case wakeup(ready: Int, bytes: Int, t: Double, slept: Double)
    /// Blocking and threaded: a task's thread sat `seconds` in one `connect` or `recv` call that began at `t`.
    case blocked(task: Int, call: BlockingCall, t: Double, seconds: Double)

    /// A wake-up or a blocked call: how the fetch waited, rather than what it fetched.
    public var isLoopView: Bool {
        switch self {
        case .wakeup, .blocked: return true
        default: return false
        }
    }

    public var task: Int? {
        switch self {
        case .connecting(let task, _), .connected(let task, _), .received(let task, _, _, _),
             .finished(let task, _, _, _), .failed(let task, _, _), .blocked(let task, _, _, _):
            return task
        case .started, .summary, .wakeup:
            return nil
        }
    }
}

/// Fetch targets are written `PORT` or `HOST:PORT` (host 127.0.0.1 by default), as the seed's clients take them.
public enum FetchTargets {
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case portNotInteger(String)
        case invalid(String)
        /// Nothing between two commas (or none at all): the target's position, from 1.
        case empty(position: Int)

        public var description: String {
            switch self {
            // The seed's words, then which address broke them: among many targets, the one to fix.
            case .portNotInteger(let text): return "Ports must be integers: '\(text)'."
            case .invalid(let text):
                return "Invalid address '\(text)': expected PORT or HOST:PORT, HOST an IP address or localhost (names are not looked up), PORT 1 to 65535."
            case .empty(let position): return "Target \(position) is empty: expected PORT or HOST:PORT."
            }
        }
    }

    /// Parses the targets in order, numbering tasks from 1. Hosts must be IP literals (or `localhost`): no name
    /// look-up happens, so callers can vet an address before any socket exists.
    public static func parse(_ texts: [String]) throws(ParseError) -> [FetchTask] {
        var tasks: [FetchTask] = []
        for (index, text) in texts.enumerated() {
            guard !text.isEmpty else { throw .empty(position: index + 1) }
            let host: String
            let port: Substring
            if let colon = text.lastIndex(of: ":") {
                host = String(text[..<colon])
                port = text[text.index(after: colon)...]
            } else {
                host = "127.0.0.1"
                port = Substring(text)
            }
            guard !port.isEmpty, port.allSatisfy({ $0.isASCII && $0.isNumber }) else { throw .portNotInteger(text) }
            guard let number = UInt16(port), number > 0, !host.isEmpty,
                  let address = try? SocketAddress(host: host, port: number) else { throw .invalid(text) }
            let fallback = host == "localhost" ? try? SocketAddress(host: "::1", port: number) : nil
            tasks.append(FetchTask(number: index + 1, address: address, fallback: fallback))
        }
        return tasks
    }
}
