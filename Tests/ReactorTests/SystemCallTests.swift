#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Testing

/// The one system-call layer: EINTR retried, would-block a value, every other failure named with its errno.
@Suite("System calls")
struct SystemCallTests {
    /// Plays a scripted sequence of results, each -1 entry failing with the errno beside it.
    private final class Script {
        var steps: [(result: Int, errno: Int32)]
        var calls = 0
        init(_ steps: [(Int, Int32)]) { self.steps = steps.map { (result: $0.0, errno: $0.1) } }
        func call() -> Int {
            let step = steps[calls]
            calls += 1
            if step.result < 0 { errno = step.errno }
            return step.result
        }
    }

    @Test func anInterruptedCallIsRetried() throws {
        let script = Script([(-1, EINTR), (-1, EINTR), (5, 0)])
        #expect(try SystemCall.nonBlocking("recv", script.call) == .processed(5))
        #expect(script.calls == 3)
        let blocking = Script([(-1, EINTR), (7, 0)])
        #expect(try SystemCall.blocking("send", blocking.call) == 7)
        #expect(blocking.calls == 2)
    }

    @Test func wouldBlockIsAValueNotAnError() throws {
        #expect(try SystemCall.nonBlocking("recv", Script([(-1, EAGAIN)]).call) == .wouldBlock)
        #expect(try SystemCall.nonBlocking("recv", Script([(-1, EWOULDBLOCK)]).call) == .wouldBlock)
    }

    @Test func anyOtherFailureKeepsTheCallsNameAndErrno() {
        #expect(throws: SystemError("writev", errno: ECONNRESET)) {
            try SystemCall.nonBlocking("writev", Script([(-1, ECONNRESET)]).call)
        }
        #expect(throws: SystemError("send", errno: EPIPE)) {
            try SystemCall.blocking("send", Script([(-1, EPIPE)]).call)
        }
    }
}
