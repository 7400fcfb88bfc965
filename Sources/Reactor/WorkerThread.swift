#if canImport(Glibc)
import Glibc
#endif
import CReactor

/// A detached thread for work that must block (the seed's blocking server and client), so nothing that blocks
/// ever runs on a reactor thread.
public enum WorkerThread {
    private final class Work {
        let name: String
        let body: @Sendable () -> Void
        init(_ name: String, _ body: @escaping @Sendable () -> Void) { self.name = name; self.body = body }
    }

    public static func start(name: String, _ body: @escaping @Sendable () -> Void) {
        let context = Unmanaged.passRetained(Work(name, body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
            let work = Unmanaged<Work>.fromOpaque(raw!).takeRetainedValue()
            // Linux limits thread names to 15 bytes.
            _ = creactor_set_thread_name(String(work.name.prefix(15)))
            work.body()
            return nil
        }, context)
        precondition(result == 0, "pthread_create failed: \(result)")
        pthread_detach(thread)
    }
}
