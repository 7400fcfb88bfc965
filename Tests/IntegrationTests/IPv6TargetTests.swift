#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

/// IPv6 loopback as a user meets it: `localhost` tries 127.0.0.1 then ::1 (as curl does), IPv4-mapped loopback
/// is loopback, and a gateway on ::1 starts its servers there.
@Suite("IPv6 loopback and localhost")
struct IPv6TargetTests {
    @Test(arguments: ["async", "blocking"])
    func localhostReachesAServerOnlyOnIPv6Loopback(mode: String) throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        // The same port number on 127.0.0.1 is held (bound, not listening: a connect there is refused), so the
        // IPv4 try is refused for certain and no other test's server can answer it.
        var port = 0
        var holder: Int32 = -1
        for _ in 0..<5 where holder < 0 {
            let created = CurlClient().request("POST", "\(gateway.url)/api/servers", body: Array(#"{"poem":"science","iface":"::1","numBytes":700,"delay":0.001}"#.utf8))
            #expect(created.status == 201, "\(created.text)")
            port = try #require(try jsonObject(created.body)["port"] as? Int)
            holder = Self.holdIPv4(port: UInt16(port))
        }
        defer { if holder >= 0 { close(holder) } }
        try #require(holder >= 0, "no port free on both families")
        let events = try ndjson(CurlClient().request("\(gateway.url)/api/fetch?mode=\(mode)&format=ndjson&targets=localhost:\(port)").text)
        #expect(events.contains { $0["event"] as? String == "done" && $0["bytes"] as? Int == 653 }, "\(events.suffix(2))")
        #expect(events.last?["poems"] as? Int == 1)
    }

    /// A socket bound to 127.0.0.1:`port` and not listening; -1 if the port is taken there.
    static func holdIPv4(port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else {
            close(fd)
            return -1
        }
        return fd
    }

    @Test func anIPv4MappedLoopbackTargetIsLoopback() throws {
        let gateway = try TestGateway()
        defer { gateway.stop() }
        let port = try #require(try gateway.startServer("science", numBytes: 700, delay: 0.001)["port"] as? Int)
        let response = CurlClient().request("\(gateway.url)/api/fetch?format=ndjson&targets=%5B::ffff:127.0.0.1%5D:\(port)")
        #expect(response.status == 200, "\(response.text)")
        #expect(try ndjson(response.text).last?["poems"] as? Int == 1)
        // Mapped addresses outside 127/8 are still outside.
        #expect(CurlClient().request("\(gateway.url)/api/fetch?targets=%5B::ffff:8.8.8.8%5D:53").status == 403)
    }

    @Test func aGatewayOnIPv6LoopbackStartsItsServersThere() throws {
        let gateway = try TestGateway { $0.host = "::1" }
        defer { gateway.stop() }
        let url = "http://[::1]:\(gateway.port)"
        let created = CurlClient().request("POST", "\(url)/api/servers", body: Array(#"{"poem":"science"}"#.utf8))
        #expect(created.status == 201, "\(created.text)")
        #expect(try jsonObject(created.body)["host"] as? String == "::1")
    }
}
