/// The kinds of deadline a connection runs. At most one input deadline runs at a time (which one depends on the
/// state), and the send deadline runs beside it whenever output is queued.
public enum HTTPConnectionDeadline: Sendable, Equatable {
    /// Waiting for a request: the header timeout before the first one (a connection that never sends a byte
    /// lives no longer than a slow head), the idle timeout between keep-alive requests. Closes quietly.
    case idle
    /// A request head has begun but not ended. Answers 408.
    case header
    /// A head announced a body that has not all arrived. Answers 408.
    case body
    /// After FIN was sent, waiting for the client's. Closes (resets if output is still stuck).
    case linger
    /// Queued output has not moved. Resets, whatever the state.
    case send
}
