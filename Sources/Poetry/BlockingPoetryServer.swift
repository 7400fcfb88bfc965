#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Synchronization

/// The seed's blocking server: one client at a time, the rest waiting in the listen backlog. Every wait (accept and
/// the sleep between sends) also watches a stop pipe, so `stop()` from another thread ends it within moments,
/// even mid-poem or blocked in accept.
public final class BlockingPoetryServer: Sendable {
    public let config: PoetryServerConfig
    public let localAddress: SocketAddress
    private let listenFD: Int32
    private let stopPipe: (read: Int32, write: Int32)
    private let served = Atomic<Int>(0)
    private let lifecycle = Atomic<BlockingServerLifecycle>(.bound)

    /// Binds and listens now, so the port is known (and a port in use is an error) before `run`.
    public init(config: PoetryServerConfig) throws(SystemError) {
        self.config = config
        listenFD = try Socket.listen(on: config.address, backlog: 128, nonBlocking: false)
        localAddress = SocketAddress.local(of: listenFD) ?? config.address
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            let error = SystemError.last("pipe")
            close(listenFD)
            throw error
        }
        stopPipe = (fds[0], fds[1])
    }

    deinit {
        close(listenFD)
        close(stopPipe.read)
        close(stopPipe.write)
    }

    public var port: UInt16 { localAddress.port }
    public var clientsServed: Int { served.load(ordering: .relaxed) }

    /// Serves until `stop()`, on the calling thread. The listening socket is closed when it returns, so the port is
    /// free again.
    public func run(observer: (PoetryServerEvent) -> Void) {
        defer { shutdown(listenFD, Int32(SHUT_RDWR)) }
        // A stop that came first is kept: then the server never serves.
        guard moveState(.run) == .serving else { return }
        while !isStopped {
            guard waitReadable(listenFD, timeoutMilliseconds: -1) else { return }
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listenFD, $0, &length) }
            }
            guard client >= 0 else { continue }
            let peer = SocketAddress(storage: &storage) ?? localAddress
            served.add(1, ordering: .relaxed)
            observer(.clientConnected(peer))
            sendPoem(to: client, peer: peer, observer: observer)
            close(client)
        }
    }

    /// Ends `run` from any thread, or keeps it from starting.
    public func stop() {
        moveState(.stop)
        var byte: UInt8 = 1
        _ = write(stopPipe.write, &byte, 1)
    }

    private var isStopped: Bool { lifecycle.load(ordering: .acquiring) == .stopped }

    /// Moves the lifecycle by `event`, trapping on a pair the table calls a bug; returns the new state.
    @discardableResult
    private func moveState(_ event: BlockingServerLifecycle.Event) -> BlockingServerLifecycle {
        var current = lifecycle.load(ordering: .relaxed)
        while true {
            guard let next = current.next(on: event) else {
                preconditionFailure("blocking poetry server: illegal lifecycle move \(event) while \(current)")
            }
            let (exchanged, original) = lifecycle.compareExchange(expected: current, desired: next, ordering: .acquiringAndReleasing)
            if exchanged { return next }
            current = original
        }
    }

    private func sendPoem(to client: Int32, peer: SocketAddress, observer: (PoetryServerEvent) -> Void) {
        Socket.setTimeouts(client, seconds: 10)
        var offset = 0
        let poem = config.poem
        while offset < poem.count {
            let end = min(offset + config.numBytes, poem.count)
            observer(.sending(bytes: end - offset))
            let code: Int32 = poem.withUnsafeBytes { raw in
                do throws(SystemError) {
                    try Socket.sendAll(client, UnsafeRawBufferPointer(rebasing: raw[offset..<end]))
                    return 0
                } catch {
                    return error.errno
                }
            }
            if code != 0 {
                let reason = code == EPIPE || code == ECONNRESET ? "Connection reset by peer" : SystemError("send", errno: code).reason
                observer(.clientLeft(peer, reason: reason))
                return
            }
            offset = end
            // The seed sleeps after every send, the last one included.
            guard waitReadable(-1, timeoutMilliseconds: Int32(config.delay * 1000)) else {
                // Stopped mid-poem: close with a reset, not a FIN, so the client cannot take the part it got for
                // the whole poem (a FIN after 150 of 3003 bytes looks exactly like a short poem's end).
                if offset < poem.count { Socket.setLingerZero(client) }
                return
            }
        }
        observer(.clientFinished(peer))
    }

    /// Waits for `fd` (or only the timeout, for fd -1) or the stop pipe. False when stopping.
    private func waitReadable(_ fd: Int32, timeoutMilliseconds: Int32) -> Bool {
        var fds = [pollfd(fd: stopPipe.read, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        while true {
            let result = poll(&fds, fd >= 0 ? 2 : 1, timeoutMilliseconds)
            if result < 0 && errno == EINTR { continue }
            return fds[0].revents == 0 && !isStopped
        }
    }
}
