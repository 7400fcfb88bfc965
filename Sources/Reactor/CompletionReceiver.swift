/// What takes a descriptor's receives as completions (a TCP transport on io_uring): the bytes come with the
/// event, so there is no readiness to act on and no `recv` to make. Called on the reactor thread only.
protocol CompletionReceiver: AnyObject {
    /// One completion of the descriptor's receive. `result`: the byte count (then `bytes` holds them, valid only
    /// during the call), 0 for the peer's end of stream, or -errno (-ENOBUFS: the buffer ring ran dry; -ECANCELED:
    /// the receive was stopped); for a listener, the accepted descriptor or -errno. `more`: the receive goes on;
    /// when false it has ended and must be started again.
    func receiveCompleted(_ result: Int32, _ bytes: UnsafeRawBufferPointer, more: Bool)
    /// The send submitted with `CompletionReads.send` completed: the bytes the kernel took, or -errno.
    func sendCompleted(_ result: Int32)
    /// The wait asked for with `CompletionReads.stageSend` is about to begin: submit what was written meanwhile.
    func stagedSendDue()
    /// A completion for this receiver is a few places ahead in the batch being dispatched: start loading what it
    /// will touch (its handler), so the call does not stall on memory (a fan-out's batch has thousands).
    func prefetchForCompletion()
}

extension CompletionReceiver {
    /// A receiver that never stages a send (a listener) has nothing to submit.
    func stagedSendDue() {}
    func prefetchForCompletion() {}
}
