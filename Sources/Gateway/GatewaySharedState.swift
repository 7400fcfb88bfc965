import Poetry
import Synchronization

/// What the gateway's reactor threads share. Everything here is safe from any thread without a lock on the
/// request path: immutable settings, atomics, and the servers, reached by message (`ServerDesk`).
final class GatewaySharedState: Sendable {
    let config: GatewayConfig
    let allowance: FetchAllowance
    /// What every async fetch together may keep of its poems' text (`--max-kept-poem-bytes`).
    let textBudget: PoemTextBudget
    let servers: ServerDesk
    private let fetchIDs = Atomic<Int>(0)

    init(config: GatewayConfig, fetchSocketBudget: Int, servers: ServerDesk) {
        self.config = config
        allowance = FetchAllowance(maxStreams: config.maxStreams, maxThreads: config.maxBlockingFetches, maxSockets: fetchSocketBudget)
        textBudget = PoemTextBudget(bytes: config.maxKeptPoemBytes)
        self.servers = servers
    }

    /// Fetch ids are unique across threads: they name a fetch in its events and `X-Fetch-Id`.
    func nextFetchID() -> Int {
        fetchIDs.add(1, ordering: .relaxed).newValue
    }
}
