import Reactor
import Synchronization

/// Where every reactor thread reaches the servers started through the API. The registry belongs to one thread
/// (the gateway's first, where async servers run and blocking servers report back); another thread's request is
/// carried there with `Reactor.execute` and answered back on its own thread. Only the server endpoints come here:
/// no request on the fetch or page path waits for it.
final class ServerDesk: Sendable {
    /// The registry's thread.
    let reactor: Reactor
    private let registry: LoopConfined<ServerRegistry>
    /// The registry's size, for /metrics and /api/reactor on any thread without a message.
    private let running = Atomic<Int>(0)

    init(registry: ServerRegistry) {
        reactor = registry.reactor
        self.registry = LoopConfined(registry)
    }

    var count: Int { running.load(ordering: .relaxed) }

    /// Runs `work` on the registry's thread; it calls its completion (there, now or later) with the result, which
    /// `reply` then gets on `caller`'s thread. On the registry's own thread nothing is posted.
    func use<Result: Sendable>(from caller: Reactor,
                               _ work: @escaping @Sendable (ServerRegistry, @escaping @Sendable (Result) -> Void) -> Void,
                               reply: @escaping (Result) -> Void) {
        let replyOnCaller = LoopConfined(reply)
        if caller === reactor {
            work(registry.value) { [self] result in
                running.store(registry.value.count, ordering: .relaxed)
                replyOnCaller.value(result)
            }
            return
        }
        reactor.execute { [self] in
            work(registry.value) { [self] result in
                running.store(registry.value.count, ordering: .relaxed)
                caller.execute { replyOnCaller.value(result) }
            }
        }
    }

    /// Runs `work` on the registry's thread now (which must be this one): start-up and shutdown.
    func local<Result>(_ work: (ServerRegistry) -> Result) -> Result {
        reactor.assertInLoop()
        defer { running.store(registry.value.count, ordering: .relaxed) }
        return work(registry.value)
    }
}
