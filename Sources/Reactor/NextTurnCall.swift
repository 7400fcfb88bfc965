/// A call run on the loop's next turn, queued at most once however often it is asked for meanwhile: for work that
/// must not run inside its caller (a handler's own `resumeReading`) and must not be queued twice (handing over
/// what completions brought while the owner was paused). The owner keeps it, and `action` captures the owner
/// weakly. Unowned reactor: the reactor runs the queued call, so it outlives every turn that could.
final class NextTurnCall {
    private unowned let reactor: Reactor
    private let action: () -> Void
    private var queued = false

    init(reactor: Reactor, _ action: @escaping () -> Void) {
        self.reactor = reactor
        self.action = action
    }

    func request() {
        guard !queued else { return }
        queued = true
        reactor.callSoon { [self] in
            queued = false
            action()
        }
    }
}
