import Reactor

/// What a slow poetry server serves and how slowly. Defaults are the seed's: 10 bytes every 0.1 s.
public struct PoetryServerConfig: Sendable {
    public var poem: [UInt8]
    public var address: SocketAddress
    public var numBytes: Int
    public var delay: Double

    public static let defaultNumBytes = 10
    public static let defaultDelay = 0.1

    public init(poem: [UInt8], address: SocketAddress, numBytes: Int = defaultNumBytes, delay: Double = defaultDelay) {
        self.poem = poem
        self.address = address
        self.numBytes = max(1, numBytes)
        self.delay = max(0, delay)
    }
}

/// What a poetry server does, in the order it does it; the CLI prints these as the seed's lines.
public enum PoetryServerEvent: Sendable, Equatable {
    case clientConnected(SocketAddress)
    /// One send of `bytes` (reported by the blocking edition, as the seed's server prints it).
    case sending(bytes: Int)
    case clientFinished(SocketAddress)
    case clientLeft(SocketAddress, reason: String)

    /// The seed's words for the event, if it prints any.
    public var seedLine: String? {
        switch self {
        case .clientConnected(let peer): return "Somebody at \(peer.pythonTuple) wants poetry!"
        case .sending(let bytes): return "Sending \(bytes) bytes"
        case .clientFinished: return nil
        case .clientLeft(let peer, let reason): return "Client at \(peer.pythonTuple) left early: \(reason)"
        }
    }
}
