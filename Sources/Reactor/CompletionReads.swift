/// A backend that can receive on a socket by completions (io_uring's multishot receive into provided buffers):
/// the capability a transport asks its reactor for, to read without readiness events and `recv` calls. Backends
/// without it (select, poll, epoll) are not touched by it at all.
protocol CompletionReads: AnyObject {
    /// From now until `remove(fd:)`, `fd`'s receives go to `receiver` (held strongly until then).
    func attachReceiver(fd: Int32, _ receiver: any CompletionReceiver)
    /// Starts a multishot receive on `fd` unless one is in flight; it goes to the kernel with the next wait.
    func receive(fd: Int32) throws(ReactorError)
    /// Asks the receive in flight to end (backpressure). Completions the kernel has already made still arrive,
    /// then one without `more`.
    func stopReceiving(fd: Int32)
    /// Hands the receive completions of the last wait to their receivers, in order, and gives each buffer back
    /// to the kernel after its call; completions for an ended registration only give their buffer back. Returns
    /// how many were delivered.
    func dispatchReceives() -> Int
}
