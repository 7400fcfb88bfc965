/// What a call on a non-blocking descriptor did: its result, or nothing because it would have blocked. Would-block
/// is a value, not an error (SwiftNIO's `IOResult`): it is the common case of every read and write loop.
public enum IOResult<Value> {
    case processed(Value)
    case wouldBlock
}

extension IOResult: Sendable where Value: Sendable {}
extension IOResult: Equatable where Value: Equatable {}
