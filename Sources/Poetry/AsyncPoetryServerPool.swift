import Dispatch
import Reactor

/// `poetry serve --async`: one `AsyncPoetryServer` per reactor thread, all on one port. With several threads the
/// listeners share the port with SO_REUSEPORT and the kernel spreads the clients among them, because one core's
/// worth of `send` calls is not enough for thousands of paced clients (BENCHMARKS.md, server fan-out).
///
/// The first server lives on the caller's reactor; each other one lives and dies on a thread of its own, sharing
/// nothing but the poem bytes, and hands its pacing figures back when stopped. Use from the caller's reactor thread.
public final class AsyncPoetryServerPool {
    private let primary: AsyncPoetryServer
    private let workers: [Worker]

    /// A reactor thread serving the shared port, and what it hands back when stopped.
    private final class Worker: Sendable {
        let reactor: Reactor
        let pacing = Locked(LatencyHistogram())
        let finished = DispatchSemaphore(value: 0)

        init(reactor: Reactor) {
            self.reactor = reactor
        }
    }

    /// Binds every listener before it returns, so a port in use is an error here, not a silent half-start.
    /// `observer` is called on whichever reactor thread the client's server runs.
    public init(reactor: Reactor, config: PoetryServerConfig, threads: Int, backend: BackendKind,
                observer: @escaping @Sendable (PoetryServerEvent) -> Void) throws(PoetryServeError) {
        precondition(threads >= 1, "a pool needs at least one reactor thread")
        var config = config
        if threads > 1 {
            // The listeners will share the port; make sure no other server has it first.
            do {
                config.address = config.address.withPort(try Socket.claimPort(config.address))
            } catch {
                throw PoetryServeError(address: config.address, reason: error.reason, errno: error.errno)
            }
        }
        do {
            primary = try AsyncPoetryServer(reactor: reactor, config: config, sharingPort: threads > 1, observer: observer)
        } catch {
            throw PoetryServeError(address: config.address, error)
        }
        var workers: [Worker] = []
        for index in 1..<threads {
            do {
                workers.append(try Self.startWorker(index, serving: config, backend: backend, observer: observer))
            } catch {
                Self.stop(workers)
                primary.close()
                throw error
            }
        }
        self.workers = workers
    }

    public var port: UInt16 { primary.port }
    public var threads: Int { workers.count + 1 }

    /// Stops every thread's server, waits for the threads to finish, and returns how late the sends were against
    /// their deadlines, all threads' figures merged.
    public func stop() -> LatencyHistogram {
        var pacing = primary.pacing
        pacing.merge(Self.stop(workers))
        primary.close()
        return pacing
    }

    @discardableResult
    private static func stop(_ workers: [Worker]) -> LatencyHistogram {
        for worker in workers { worker.reactor.stop() }
        var pacing = LatencyHistogram()
        for worker in workers {
            worker.finished.wait()
            pacing.merge(worker.pacing.withLock { $0 })
        }
        return pacing
    }

    private static func startWorker(_ index: Int, serving config: PoetryServerConfig, backend: BackendKind,
                                    observer: @escaping @Sendable (PoetryServerEvent) -> Void) throws(PoetryServeError) -> Worker {
        let worker: Worker
        do {
            worker = Worker(reactor: try Reactor(backend: backend))
        } catch {
            throw PoetryServeError(address: config.address, error)
        }
        let ready = DispatchSemaphore(value: 0)
        let failure = Locked<PoetryServeError?>(nil)
        WorkerThread.start(name: "serve-\(index)") {
            defer { worker.finished.signal() }
            let server: AsyncPoetryServer
            do throws(ReactorError) {
                server = try AsyncPoetryServer(reactor: worker.reactor, config: config, sharingPort: true, observer: observer)
            } catch {
                failure.withLock { $0 = PoetryServeError(address: config.address, error) }
                ready.signal()
                return
            }
            ready.signal()
            // A stop sent before this run is kept, so a signal during start-up cannot leave this thread running.
            try? worker.reactor.run()
            worker.pacing.withLock { $0 = server.pacing }
            server.close()
        }
        ready.wait()
        if let error = failure.withLock({ $0 }) {
            worker.finished.wait()
            throw error
        }
        return worker
    }
}
