// The usual shape of a small SwiftNIO server: one event-loop thread, NIOHTTP1's pipeline, a handler answering
// GET /healthz with "ok\n" and keeping the connection alive. Usage: NIOPeer PORT
import NIOCore
import NIOHTTP1
import NIOPosix

final class HealthHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var keepAlive = true
    private var path = ""

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            keepAlive = head.isKeepAlive
            path = head.uri
        case .body:
            break
        case .end:
            let found = path == "/healthz"
            let body = found ? "ok\n" : "not found\n"
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/plain")
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            if !keepAlive { headers.add(name: "Connection", value: "close") }
            let head = HTTPResponseHead(version: .http1_1, status: found ? .ok : .notFound, headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            let keepAlive = self.keepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
        }
    }
}

let port = Int(CommandLine.arguments.dropFirst().first ?? "8081") ?? 8081
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 4096)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
            channel.pipeline.addHandler(HealthHandler())
        }
    }
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
let channel = try bootstrap.bind(host: "127.0.0.1", port: port).wait()
print("listening on \(port)")
try channel.closeFuture.wait()
