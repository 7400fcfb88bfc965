/// The calls a blocking client's thread waits in.
public enum BlockingCall: String, Sendable, Equatable {
    case connect
    case recv
}
