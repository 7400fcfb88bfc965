/// A backend that can receive on a socket by completions (io_uring's multishot receive into provided buffers), and
/// send by completions too (a turn's writes as one send, submitted with the wait): the capability a transport asks its reactor for,
/// to read and write without readiness events. Backends without it (select, poll, epoll) are not touched by it.
protocol CompletionReads: AnyObject {
    /// From now until `remove(fd:)`, `fd`'s receives go to `receiver` (held strongly until then). `accepting`: `fd`
    /// is a listener, and what it receives are accepted descriptors (the result of each completion).
    func attachReceiver(fd: Int32, _ receiver: any CompletionReceiver, accepting: Bool)
    /// Starts a multishot receive (or accept) on `fd` unless one is in flight; it goes to the kernel with the next
    /// wait.
    func receive(fd: Int32) throws(ReactorError)
    /// Asks the receive in flight to end (backpressure). Completions the kernel has already made still arrive,
    /// then one without `more`.
    func stopReceiving(fd: Int32)
    /// Calls the receiver's `stagedSendDue` once just before the next wait, however often asked before it: a
    /// turn's writes on `fd` go to the kernel as one send, in the same `io_uring_enter` as the wait.
    func stageSend(fd: Int32)
    /// Lets the receivers that staged a send submit it; the loop calls it before it works out how long to wait (a
    /// submission that fails queues a call for the next turn), and the wait calls it again for anything left.
    func submitStagedSends()
    /// Submits one send of `bytes` on `fd` with the next wait; the bytes must stay put until `sendCompleted`
    /// (or, after `remove(fd:)`, until the receiver is let go of: the backend holds it until the send has ended).
    /// `waitForRoom`: false completes with -EAGAIN when the socket has no room at all (rather than waiting in the
    /// kernel, where a peer that never reads would keep it for good).
    func send(fd: Int32, _ bytes: UnsafeRawBufferPointer, waitForRoom: Bool) throws(ReactorError)
    /// Hands the receive and send completions of the last wait to their receivers, in order, and gives each
    /// receive buffer back to the kernel after its call; completions for an ended registration only give their
    /// buffer back. Returns how many were delivered.
    func dispatchCompletions() -> Int
}
