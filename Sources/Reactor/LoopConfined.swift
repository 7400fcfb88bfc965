/// A value confined to one reactor's thread, carried through a `@Sendable` closure (a worker thread's, or one
/// posted with `Reactor.execute`) that only uses it back on that thread. Unchecked: the confinement, not the type
/// system, is what makes the hand-over sound; keep every use of `value` on the loop thread.
public struct LoopConfined<Value>: @unchecked Sendable {
    public let value: Value

    public init(_ value: Value) {
        self.value = value
    }
}
