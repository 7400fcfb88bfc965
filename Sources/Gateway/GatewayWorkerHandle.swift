import Reactor

/// How one worker reaches another: its reactor, to post to, and the worker, to use only in what it posts.
/// @unchecked Sendable: `worker` is touched only on its own reactor's thread, inside work posted with
/// `reactor.execute`; unowned because the gateway owns its workers and outlives every loop that could run such work.
final class GatewayWorkerHandle: @unchecked Sendable {
    let index: Int
    let reactor: Reactor
    unowned let worker: GatewayWorker

    init(_ worker: GatewayWorker) {
        index = worker.index
        reactor = worker.reactor
        self.worker = worker
    }
}
