// The usual shape of a small Hummingbird 2 app on one event-loop thread: GET /healthz answers "ok\n".
// Usage: HummingbirdPeer PORT
import Hummingbird
import NIOPosix

let port = Int(CommandLine.arguments.dropFirst().first ?? "8082") ?? 8082
let router = Router()
router.get("healthz") { _, _ -> String in "ok\n" }
let app = Application(
    router: router,
    configuration: .init(address: .hostname("127.0.0.1", port: port)),
    eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup(numberOfThreads: 1))
)
try await app.runService()
