/// What a connection's owner must do next, as the state machine decides it. The owner performs it on the
/// transport and reports back what happened (`HTTPConnectionStateMachine`'s inputs). No case carries a payload:
/// the request and the refusal are taken from the machine, so the hot path moves a byte, not a request.
public enum HTTPConnectionAction: Sendable, Equatable {
    /// Hand the request (`takeRequest()`) to the application; report its response with `responseStarted` and
    /// `responseComplete`.
    case dispatch
    /// Send `HTTP/1.1 100 Continue`: the client waits for it before sending the body.
    case sendContinue
    /// Answer with the machine's `refusal` (its status and words), then the connection ends.
    case reject
    /// Close once the queued output is written.
    case close
    /// Send FIN after the queued output and keep reading (discarding) until the peer's FIN or the linger
    /// deadline, so unread request bytes cannot turn the close into a reset that destroys the answer.
    case shutdownWrite
    /// End the connection now with a reset; queued output is dropped.
    case reset
    /// Report how many bytes the kernel still holds unsent for this connection (`unsentMeasured`): an idle
    /// connection whose client stopped reading may have its last answers stuck there, out of the process's sight.
    case measureUnsent
}
