import Reactor

/// How one worker reaches another: its reactor, to post to, and the worker, to use only in what it posts.
/// @unchecked Sendable: `worker` is touched only on its own reactor's thread, inside work posted with
/// `reactor.execute`. Both are unowned: the gateway owns them and outlives every loop that could run such work, and
/// work left queued on a stopped reactor must not keep that reactor alive through its handle (a cycle).
final class GatewayWorkerHandle: @unchecked Sendable {
    let index: Int
    unowned let reactor: Reactor
    unowned let worker: GatewayWorker

    init(_ worker: GatewayWorker) {
        index = worker.index
        reactor = worker.reactor
        self.worker = worker
    }
}
