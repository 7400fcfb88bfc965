#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Poetry
import Reactor
import Synchronization
import Testing

/// Cancelling a blocking fetch from another thread: the fetch thread owns its socket and is the only one to close
/// it; `cancel()` only wakes it.
@Suite("Cancelling a blocking fetch")
struct BlockingFetchCancelTests {
    /// With the fetch thread held inside its observer (its socket open), a cancel must leave that socket alone:
    /// the peer sees no end of stream until the fetch thread itself closes it.
    @Test func cancelNeverTouchesTheSocketItsFetchThreadOwns() throws {
        let listenFD = try Socket.listen(on: SocketAddress(host: "127.0.0.1", port: 0), nonBlocking: false)
        defer { close(listenFD) }
        let port = SocketAddress.local(of: listenFD)!.port
        let control = BlockingFetchControl()
        let inObserver = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        let sawSummary = Atomic<Bool>(false)
        let targets = tasks([port])
        Thread {
            BlockingFetch.run(tasks: targets, timeout: 10, control: control) { event in
                switch event {
                case .received:
                    inObserver.signal()
                    release.wait()
                case .summary:
                    sawSummary.store(true, ordering: .relaxed)
                default: break
                }
            }
            finished.signal()
        }.start()
        let peer = accept(listenFD, nil, nil)
        defer { close(peer) }
        #expect(peer >= 0)
        _ = send(peer, "hello", 5, 0)
        inObserver.wait()

        control.cancel()
        var event = pollfd(fd: peer, events: Int16(POLLIN), revents: 0)
        #expect(poll(&event, 1, 0) == 0, "cancel() shut the fetch's socket down from another thread")

        release.signal()
        finished.wait()
        let summarised = sawSummary.load(ordering: .relaxed)
        #expect(!summarised, "a cancelled fetch reports no summary")
        // Now the owner has closed it: the peer reads the end of the stream.
        event.revents = 0
        #expect(poll(&event, 1, 5000) == 1)
        var byte: UInt8 = 0
        #expect(recv(peer, &byte, 1, 0) == 0)
    }

    /// A cancel racing the fetch's own close, many times over, with other sockets opened meanwhile that could be
    /// handed a just-freed number: every fetch ends, and no stranger is ever shut down.
    @Test func aCancelRacingACloseNeverHarmsAStranger() throws {
        let farm = try ServerFarm([.poem(Array(repeating: UInt8(ascii: "x"), count: 40), numBytes: 10, delay: 0)])
        defer { farm.stop() }
        let targets = tasks(farm.boundPorts + farm.boundPorts)
        for round in 0..<200 {
            let control = BlockingFetchControl()
            let finished = DispatchSemaphore(value: 0)
            Thread {
                BlockingFetch.run(tasks: targets, timeout: 10, control: control) { _ in }
                finished.signal()
            }.start()
            // Strangers: sockets opened while the fetch opens and closes its own, each a possible reuse.
            var strangers: [(Int32, Int32)] = []
            for _ in 0..<4 {
                var pair: [Int32] = [0, 0]
                guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0 else { continue }
                strangers.append((pair[0], pair[1]))
                if round % 2 == 0 { sched_yield() }
            }
            usleep(UInt32.random(in: 0...400))  // anywhere from before the first connect to after the last close
            control.cancel()
            #expect(finished.wait(timeout: .now() + 10) == .success, "round \(round): the fetch did not end")
            for (a, b) in strangers {
                var byte: UInt8 = 7
                let sent = send(a, &byte, 1, Int32(MSG_NOSIGNAL))
                #expect(sent == 1, "round \(round): a stranger's socket was shut down")
                close(a)
                close(b)
            }
        }
    }
}
