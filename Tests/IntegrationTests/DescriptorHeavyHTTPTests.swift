#if canImport(Glibc)
import Glibc
#endif
import HTTP1
import HTTPServer
import Reactor
import Testing

/// HTTP tests that fill the descriptor table. They run in the `swift test --filter DescriptorHeavy` pass of their
/// own (scripts/test.sh), where no other test's descriptors are pushed past select's FD_SETSIZE.
@Suite(.serialized)
struct DescriptorHeavyHTTP {
    /// On a select reactor a connection accepted at descriptor FD_SETSIZE or above cannot be watched: it is closed at
    /// once and counted, and the connections the reactor can watch go on being served.
    @Test func aConnectionSelectCannotWatchIsClosedAndCountedWhileOthersAreServed() throws {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < 4096 {
            limit.rlim_cur = min(4096, limit.rlim_max)
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        let server = try TestHTTPServer(backend: .select)
        defer { server.stop() }
        let watched = try RawClient(port: server.port)
        watched.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(watched.readResponseTexts(1).statusCodes == [200])

        // Every free number below FD_SETSIZE taken, so the next accept lands above it.
        var fillers: [Int32] = []
        defer { fillers.forEach { close($0) } }
        while true {
            let fd = open("/dev/null", O_RDONLY)
            try #require(fd >= 0, "ran out of descriptors while filling the table")
            fillers.append(fd)
            if fd >= Int32(FD_SETSIZE) + 2 { break }
        }
        let unwatchable = try RawClient(port: server.port)
        unwatchable.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        let answer = unwatchable.readUntilClosed(limit: 5)
        #expect(answer.closed && answer.text.isEmpty, "\(answer)")
        #expect(server.stats.connectionsRefused == 1)

        watched.send("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(watched.readResponseTexts(1).statusCodes == [200])
    }
}
