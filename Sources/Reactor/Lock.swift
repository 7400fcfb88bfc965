#if canImport(Glibc)
import Glibc
#endif

/// A mutex over a value, built on pthread_mutex so ThreadSanitizer can see its ordering (it does not model the
/// futex underneath the standard library's Mutex). Used for the reactor's cross-thread queue.
public final class Locked<Value>: @unchecked Sendable {
    // Safe because every access to `value` goes through `withLock`, which holds `mutex`.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
