import Poetry

/// Carries the CLI's observer (which keeps the transcript and the poems) onto `ThreadedFetch`'s threads.
/// Safe because ThreadedFetch calls its observer under one lock, never two at once, and `run` returns only after
/// the last call, so the captured state is never touched concurrently.
struct UncheckedSendableObserver: @unchecked Sendable {
    let observe: (FetchEvent) -> Void
    init(_ observe: @escaping (FetchEvent) -> Void) { self.observe = observe }
}
