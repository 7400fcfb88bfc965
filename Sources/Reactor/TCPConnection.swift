#if canImport(Glibc)
import Glibc
#endif
import CReactor

// @exclusivity(unchecked) marks hot-path state that is confined to the reactor thread and never accessed in
// overlapping ways (each access is a plain read or write with no call inside it), so the runtime exclusivity
// check, about a sixth of the server's user-space instructions per request (BENCHMARKS.md), guards nothing here.
/// The transport for one TCP connection: reads into the reactor's shared buffer and hands bytes to its handler,
/// buffers writes, and reports backpressure both ways. On a backend with completion reads (io_uring) it reads
/// nothing itself: receives complete with their bytes, handed to the handler from the kernel's buffer; and writes go
/// out as sends submitted with the loop's next wait (one a turn, whatever was written meanwhile), counted as handed
/// to the kernel the moment they are written.
public final class TCPConnection: IOHandler, CompletionReceiver {
    /// Unowned: the reactor owns its registered transports, never the other way round.
    public unowned let reactor: Reactor
    public let fd: Int32
    /// The remote address, looked up on first use (one system call fewer per connection for those that never ask).
    public private(set) lazy var peer: SocketAddress? = SocketAddress.peer(of: fd)
    @exclusivity(unchecked) public var handler: any ConnectionHandler
    /// The reactor's shared read buffer, kept here so a read event touches no reference count of the reactor's (an
    /// `unowned` load retains it). Valid as long as the reactor, which outlives every transport it dispatches to.
    private let readBuffer: UnsafeMutableRawBufferPointer
    /// The reactor's completion reads, when its backend has them; nil on select, poll and epoll.
    private let completionReads: (any CompletionReads)?
    /// What completed while reading was paused (receives already made cannot be taken back): the bytes, and the
    /// end that came after them (0: the peer's FIN, or -errno once reading has resumed; an error while still
    /// paused ends the connection at once), delivered in order once reading resumes.
    /// Unchecked: appended to and read, with nothing inside an access that could touch them again.
    @exclusivity(unchecked) private var heldBytes: [UInt8] = []
    @exclusivity(unchecked) private var heldEnd: Int32?
    /// Delivery of the held input on a later turn, never inside the handler's own `resumeReading`.
    private lazy var heldDelivery = NextTurnCall(reactor: reactor) { [weak self] in self?.deliverHeld() }
    /// A submitted send is reading the head of `outbound`, which stays pinned until it completes.
    @exclusivity(unchecked) private var sendInFlight = false
    /// With completions: the head of `outbound` that counts as handed to the kernel, as a `send` that took it at
    /// once would have (written into a turn's send, not yet completed); the handler sees only the rest as buffered.
    /// If the kernel takes less, what it left counts as buffered again (the peer is not reading).
    @exclusivity(unchecked) private var handedBytes = 0
    /// The backend will call `stagedSendDue` before its next wait.
    @exclusivity(unchecked) private var sendStaged = false

    /// Above this many buffered bytes the handler is told to stop producing. (Both marks are read on every write.)
    @exclusivity(unchecked) public var highWatermark = 64 * 1024
    /// Below this many the handler is told it may produce again.
    @exclusivity(unchecked) public var lowWatermark = 16 * 1024

    /// Sets both marks. A method the optimiser may not inline: another module that sets the properties directly
    /// gets a runtime exclusivity check compiled in for each, whatever their declarations say.
    @inline(never)
    public func setWatermarks(high: Int, low: Int) {
        highWatermark = high
        lowWatermark = low
    }

    @exclusivity(unchecked) private var outbound = OutboundBuffer()

    /// Where the connection is in its life, both directions at once; moved only by `moveState`, which traps on an
    /// illegal pair in debug builds (after SwiftNIO's `SocketChannelLifecycleManager`). Pausing reads and the
    /// writability flag are flow control, not lifecycle, and stay apart.
    private enum Lifecycle: Equatable {
        /// `peerEnded`: the peer sent FIN and the handler chose to keep writing (half-open).
        /// `writeShutdownRequested`: FIN goes out once the buffer drains; reading goes on.
        case open(peerEnded: Bool, writeShutdownRequested: Bool)
        /// `close()` with bytes still buffered: no more reading or writing, the socket closes once they are out.
        case closingAfterFlush
        case closed
    }

    private enum LifecycleEvent {
        case peerEnded, writeShutdownRequested, closeRequestedWithBytesBuffered, finished
    }

    @exclusivity(unchecked) private var lifecycle = Lifecycle.open(peerEnded: false, writeShutdownRequested: false)
    @exclusivity(unchecked) private var readingPaused = false
    /// Whether the buffer is below the high watermark, as of now; the handler hears of a change later (see
    /// `noteWritabilityChange`).
    @exclusivity(unchecked) public private(set) var isWritable = true
    /// What the handler was last told about writability, and whether a notice is already queued.
    private var reportedWritable = true
    private var writabilityNoticeQueued = false

    private func moveState(_ event: LifecycleEvent) {
        switch (lifecycle, event) {
        case (.open(false, let shutdown), .peerEnded):
            lifecycle = .open(peerEnded: true, writeShutdownRequested: shutdown)
        case (.open(let ended, false), .writeShutdownRequested):
            lifecycle = .open(peerEnded: ended, writeShutdownRequested: true)
        case (.open, .closeRequestedWithBytesBuffered):
            lifecycle = .closingAfterFlush
        case (.open, .finished), (.closingAfterFlush, .finished):
            lifecycle = .closed
        default:
            assertionFailure("TCPConnection: illegal move \(event) while \(lifecycle)")
        }
    }

    public var isOpen: Bool { lifecycle != .closed }

    private var isAcceptingWrites: Bool {
        if case .open(_, false) = lifecycle { return true }
        return false
    }

    private var wantsToRead: Bool {
        if case .open(false, _) = lifecycle { return !readingPaused }
        return false
    }

    /// Debug builds check every entry point runs on the loop thread; release builds compile this away.
    @inline(__always) private func assertInLoop() {
        #if DEBUG
        reactor.assertInLoop()
        #endif
    }

    /// Whether Nagle's algorithm is off (TCP_NODELAY).
    public private(set) var noDelay = false

    /// Turns Nagle's algorithm off, once: for a peer that will get several writes in a row (a stream, pipelined
    /// answers), where Nagle would hold a small write back until the previous one is acknowledged.
    public func setNoDelay() {
        assertInLoop()
        guard !noDelay, lifecycle != .closed else { return }
        noDelay = true
        Socket.setNoDelay(fd)
    }
    /// Bytes written and not yet handed to the kernel: what a peer that does not read leaves here.
    public var bufferedBytes: Int { outbound.count - handedBytes }
    /// Bytes handed to the kernel since the connection opened; with the socket's unsent count
    /// (`Socket.unsentBytes`) it tells how much the peer has acknowledged. Unchecked: loop-confined, plain stores.
    @exclusivity(unchecked) public private(set) var bytesSent: UInt64 = 0

    /// Takes ownership of a connected non-blocking socket and registers it (or takes over its registration, for a
    /// socket a connector was watching). Calls `handler.connectionMade`. `noDelay` turns off Nagle's algorithm,
    /// which a peer that only reads does not need.
    public convenience init(reactor: Reactor, fd: Int32, handler: any ConnectionHandler, noDelay: Bool = true) throws(ReactorError) {
        try self.init(reactor: reactor, fd: fd, handler: handler, noDelay: noDelay, alreadyRegistered: false)
    }

    init(reactor: Reactor, fd: Int32, handler: any ConnectionHandler, noDelay: Bool, alreadyRegistered: Bool) throws(ReactorError) {
        self.reactor = reactor
        self.fd = fd
        self.handler = handler
        readBuffer = reactor.readBuffer
        completionReads = reactor.completionReads
        if noDelay { setNoDelay() }
        // Receiving by completions needs no readiness (nor do blocked writes, on a ring that submits sends).
        let interest: Interest = completionReads == nil ? .read : []
        do {
            if alreadyRegistered {
                try reactor.reassign(fd: fd, interest: interest, to: self)
            } else {
                try reactor.register(fd: fd, interest: interest, handler: self)
            }
            if let completionReads {
                completionReads.attachReceiver(fd: fd, self, accepting: false)
                try completionReads.receive(fd: fd)
            }
        } catch {
            reactor.unregister(fd: fd)
            Glibc.close(fd)
            throw error
        }
        handler.connectionMade(self)
    }

    /// Connects to `address` without blocking. On success a connection is made for `handler`; on failure
    /// `handler.connectionFailed` is called. Neither happens inside this call.
    @discardableResult
    public static func connect(reactor: Reactor, to address: SocketAddress, timeout: Double? = nil, noDelay: Bool = true,
                               handler: any ConnectionHandler) -> TCPConnector {
        TCPConnector(reactor: reactor, address: address, timeout: timeout) { [unowned reactor] result, registered in
            switch result {
            case .success(let fd):
                do throws(ReactorError) {
                    _ = try TCPConnection(reactor: reactor, fd: fd, handler: handler, noDelay: noDelay, alreadyRegistered: registered)
                } catch {
                    handler.connectionFailed(.unwatchable(error))
                }
            case .failure(let error):
                handler.connectionFailed(error)
            }
        }
    }

    // MARK: writing

    /// Writes `bytes`, sending at once when nothing is queued and buffering only what the socket would not take.
    /// With completions, joins the turn's send instead (see `handOver`).
    public func write(_ bytes: UnsafeRawBufferPointer) {
        assertInLoop()
        guard isAcceptingWrites, bytes.count > 0 else { return }
        if let completionReads {
            if handOver(bytes, completionReads) { return }
            outbound.append(bytes)
            updateInterest()
            noteIfAboveHighWatermark()
            return
        }
        var remaining = bytes
        if outbound.isEmpty {
            do {
                if case .processed(let sent) = try SystemCall.nonBlocking("send", { send(fd, bytes.baseAddress, bytes.count, CREACTOR_MSG_NOSIGNAL) }) {
                    bytesSent &+= UInt64(sent)
                    if sent == bytes.count { return }
                    remaining = UnsafeRawBufferPointer(rebasing: bytes[sent...])
                }
            } catch {
                fail(error)
                return
            }
        }
        outbound.append(remaining)
        updateInterest()
        noteIfAboveHighWatermark()
    }

    private func noteIfAboveHighWatermark() {
        if isWritable && bufferedBytes > highWatermark {
            isWritable = false
            // Never told inside the write: a handler that writes on `false` would slip its bytes in between the
            // writes of a frame its caller is still making (a chunk's size line, data and CRLF).
            noteWritabilityChange(deferred: true)
        }
    }

    /// Adds `bytes` to the send that goes to the kernel with the loop's next wait, and counts them as handed over,
    /// as a `send` that took them at once would: no send deadline, no backpressure, no `outputFlushed` for them.
    /// Only while everything queued is handed over and unsubmitted (a submitted send's length is fixed), and up to
    /// the high watermark a turn: past it, or behind a send in flight, bytes are buffered as they are on epoll.
    private func handOver(_ bytes: UnsafeRawBufferPointer, _ completionReads: any CompletionReads) -> Bool {
        guard !sendInFlight, handedBytes == outbound.count, outbound.count + bytes.count <= highWatermark else { return false }
        outbound.append(bytes)
        handedBytes += bytes.count
        if !sendStaged {
            sendStaged = true
            completionReads.stageSend(fd: fd)
        }
        return true
    }

    func prefetchForCompletion() {
        creactor_prefetch(UnsafeRawPointer(Unmanaged.passUnretained(handler as AnyObject).toOpaque()), 2)
    }

    func stagedSendDue() {
        sendStaged = false
        guard lifecycle != .closed else { return }
        submitSend()
    }

    /// Tells the handler the writability as it is when the notice runs; flips in between collapse into none.
    private func noteWritabilityChange(deferred: Bool) {
        if writabilityNoticeQueued { return }
        if !deferred {
            deliverWritabilityNotice()
            return
        }
        writabilityNoticeQueued = true
        reactor.callSoon { [weak self] in
            guard let self else { return }
            self.writabilityNoticeQueued = false
            self.deliverWritabilityNotice()
        }
    }

    private func deliverWritabilityNotice() {
        guard lifecycle != .closed, reportedWritable != isWritable else { return }
        reportedWritable = isWritable
        handler.writabilityChanged(isWritable)
    }

    public func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    public func write(_ text: String) {
        var text = text
        text.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }

    /// Closes once everything buffered is written.
    public func close() {
        assertInLoop()
        guard case .open = lifecycle else { return }
        if outbound.isEmpty {
            finish(.done)
        } else {
            moveState(.closeRequestedWithBytesBuffered)
            updateInterest()
        }
    }

    /// Closes now with a reset; buffered bytes are dropped.
    public func abort() {
        assertInLoop()
        guard lifecycle != .closed else { return }
        Socket.setLingerZero(fd)
        finish(.aborted)
    }

    /// Sends FIN after the buffered bytes while still reading: a half-close.
    public func shutdownWrite() {
        assertInLoop()
        guard isAcceptingWrites else { return }
        moveState(.writeShutdownRequested)
        if outbound.isEmpty { Glibc.shutdown(fd, Int32(SHUT_WR)) }
    }

    // MARK: reading

    public func pauseReading() {
        assertInLoop()
        guard !readingPaused else { return }
        readingPaused = true
        updateInterest()
    }

    public func resumeReading() {
        assertInLoop()
        guard readingPaused else { return }
        readingPaused = false
        updateInterest()
    }

    private func updateInterest() {
        guard lifecycle != .closed else { return }
        var interest: Interest = []
        if let completionReads {
            updateReceiving(completionReads)
            // Delivering held bytes may have closed the connection.
            guard lifecycle != .closed else { return }
        } else if wantsToRead {
            interest.insert(.read)
        }
        if !outbound.isEmpty {
            // With completions, what is queued goes out as a submitted send (the kernel touches its bytes only
            // inside our own io_uring_enter, so a cancelled send cannot read freed memory); a staged one goes with
            // the wait, taking whatever else this turn writes.
            if completionReads != nil {
                if !sendStaged { submitSend() }
                guard lifecycle != .closed else { return }
            } else {
                interest.insert(.write)
            }
        }
        try? reactor.setInterest(fd: fd, interest)
    }

    // MARK: completion sends

    /// Submits the head of what is queued (one contiguous piece), unless a send is already in flight.
    private func submitSend() {
        guard !sendInFlight, let completionReads else { return }
        let piece = outbound.firstContiguous
        guard piece.count > 0 else { return }
        do throws(ReactorError) {
            // A send carrying handed-over bytes must not wait in the kernel for room: they count as sent, so
            // nothing here would notice a peer that never makes any. Without room it completes with -EAGAIN and
            // they are buffered again; a send of buffered bytes waits, its deadline already running.
            try completionReads.send(fd: fd, piece, waitForRoom: handedBytes == 0)
        } catch {
            failSubmission(error)
            return
        }
        outbound.pin()
        sendInFlight = true
    }

    func sendCompleted(_ result: Int32) {
        sendInFlight = false
        outbound.unpin()
        guard lifecycle != .closed else { return }
        // -EAGAIN: a send that was not to wait found no room at all (from any other send, an error). Which kind it
        // was shows in `handedBytes`, unchanged while a send is in flight (nothing is handed over behind one).
        guard result >= 0 || (result == -EAGAIN && handedBytes > 0) else {
            fail(SystemError("send", errno: -result))
            return
        }
        let sent = max(Int(result), 0)
        outbound.consume(sent)
        bytesSent &+= UInt64(sent)
        let handedSent = min(sent, handedBytes)
        handedBytes -= handedSent
        // The kernel took less than was handed over: the socket is full, and from the handler's view the rest is
        // queued now (its send deadline and backpressure start).
        let requeued = handedBytes > 0
        handedBytes = 0
        if requeued { noteIfAboveHighWatermark() }
        outputLeft(written: sent - handedSent, requeued: requeued)
    }

    // MARK: completion reads

    /// Keeps the receive in flight exactly while reading is wanted, and queues the delivery of what was held.
    private func updateReceiving(_ completionReads: any CompletionReads) {
        guard wantsToRead else {
            completionReads.stopReceiving(fd: fd)
            return
        }
        if hasHeldInput {
            // What was held goes first, and no new receive starts until it is all delivered (`deliverHeld` comes
            // back here): a receive running meanwhile would add to the held bytes as fast as the peer sends, while
            // the handler takes a share a turn, and they would grow without bound.
            heldDelivery.request()
            return
        }
        do throws(ReactorError) {
            try completionReads.receive(fd: fd)
        } catch {
            failSubmission(error)
        }
    }

    /// A request the ring would not take (it was full even after handing its entries to the kernel).
    private func failSubmission(_ error: ReactorError) {
        if case .system(let systemError) = error {
            fail(systemError)
        } else {
            finish(.failed(SystemError("io_uring_enter", errno: EIO)))
        }
    }

    private var hasHeldInput: Bool { !heldBytes.isEmpty || heldEnd != nil }
    /// Bytes received while reading was paused and not delivered yet.
    var heldByteCount: Int { heldBytes.count }

    func receiveCompleted(_ result: Int32, _ bytes: UnsafeRawBufferPointer, more: Bool) {
        // Once the peer has ended or the connection is closing, nothing more is read (as with readiness).
        guard case .open(false, _) = lifecycle else { return }
        if readingPaused || hasHeldInput {
            // Held in order behind what is held already, until reading resumes.
            if result > 0 {
                heldBytes.append(contentsOf: bytes)
            } else if readingPaused && result < 0 && result != -ENOBUFS && result != -ECANCELED {
                // An error (a reset) ends a paused connection now, as epoll reports it to one: the peer is gone,
                // and waiting for reading to resume would only keep the connection.
                fail(SystemError("recv", errno: -result))
            } else if result != -ENOBUFS && result != -ECANCELED && heldEnd == nil {
                // Reading has resumed (or this is the FIN): the end goes behind the held bytes, as epoll would read
                // them first.
                heldEnd = result
            }
            return
        }
        deliverReceive(result, bytes)
        if !more { updateInterest() }
    }

    private func deliverReceive(_ result: Int32, _ bytes: UnsafeRawBufferPointer) {
        if result > 0 {
            handler.dataReceived(bytes)
        } else if result == 0 {
            peerEnded()
        } else if result != -ENOBUFS && result != -ECANCELED {
            // A dry buffer ring or a stopped receive is no error: the receive starts again while reading is wanted.
            fail(SystemError("recv", errno: -result))
        }
    }

    /// Hands over what was held, a read buffer's worth at a time (the most a readiness read gives at once), as
    /// long as reading stays wanted; then the end, if one came.
    private func deliverHeld() {
        // Pieces are copied out, so the handler may do anything (pause, close) while one is delivered; the held
        // bytes lose their delivered head once, not once per piece.
        var delivered = 0
        while wantsToRead && delivered < heldBytes.count {
            let count = min(heldBytes.count - delivered, readBuffer.count)
            let piece = Array(heldBytes[delivered..<delivered + count])
            delivered += count
            piece.withUnsafeBytes { handler.dataReceived($0) }
        }
        heldBytes.removeFirst(min(delivered, heldBytes.count))
        if wantsToRead, heldBytes.isEmpty, let end = heldEnd {
            heldEnd = nil
            deliverReceive(end, UnsafeRawBufferPointer(start: nil, count: 0))
        }
        updateInterest()
    }

    // MARK: IOHandler

    public func readable() {
        let buffer = readBuffer
        // A few reads per wake-up, then let the other descriptors have their turn.
        for _ in 0..<4 {
            guard wantsToRead else { return }
            let result: IOResult<Int>
            do {
                result = try SystemCall.nonBlocking("recv") { recv(fd, buffer.baseAddress, buffer.count, 0) }
            } catch {
                fail(error)
                return
            }
            switch result {
            case .wouldBlock:
                return
            case .processed(0):
                peerEnded()
                return
            case .processed(let count):
                handler.dataReceived(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                if count < buffer.count { return }
            }
        }
    }

    /// The peer sent FIN: the handler chooses between writing on (half-open) and closing.
    private func peerEnded() {
        moveState(.peerEnded)
        let keepWriting = handler.readEOF()
        if keepWriting, case .open = lifecycle {
            updateInterest()
        } else {
            close()
        }
    }

    public func writable() {
        guard lifecycle != .closed else { return }
        let written: Int
        do {
            written = try outbound.flush(to: fd)
        } catch {
            fail(error)
            return
        }
        bytesSent &+= UInt64(written)
        outputLeft(written: written, requeued: false)
    }

    /// `written` buffered bytes have gone to the kernel (by a flush on writability, or a submitted send's
    /// completion), or handed-over bytes came back as buffered (`requeued`): close or shut down if that was all and
    /// it was asked for, keep sending the rest, tell the handler.
    private func outputLeft(written: Int, requeued: Bool) {
        if outbound.isEmpty {
            outbound.shrinkIfIdle(keeping: 256 * 1024)
            if lifecycle == .closingAfterFlush {
                finish(.done)
                return
            }
            if case .open(_, true) = lifecycle { Glibc.shutdown(fd, Int32(SHUT_WR)) }
        }
        if completionReads != nil {
            // Receiving does not depend on output: only the rest, if any, has to go out.
            if !outbound.isEmpty && !sendStaged { submitSend() }
            guard lifecycle != .closed else { return }
        } else {
            updateInterest()
        }
        if !isWritable && bufferedBytes <= lowWatermark {
            isWritable = true
            // Outside any write of the handler's, so it may be told now (unless a notice is already queued).
            noteWritabilityChange(deferred: false)
        }
        // Last, so a handler that answers the progress (takes the next request, closes) sees a settled transport.
        if (written > 0 || requeued) && lifecycle != .closed { handler.outputFlushed(remaining: bufferedBytes) }
    }

    /// The reactor is going away: close the socket and let go of the handler (which may hold this transport, a
    /// cycle). The handler is not called: nothing may touch the reactor now, and a callback would.
    public func reactorClosing() {
        guard lifecycle != .closed else { return }
        lifecycle = .closed
        Glibc.close(fd)
        handler = DetachedHandler()
    }

    public func hangup() {
        let code = Socket.pendingError(fd)
        // A send in flight (io_uring) may have taken the socket's error already (reading it clears it): its
        // completion reports it, rather than this calling a reset a clean end.
        if code == 0 && sendInFlight { return }
        // SO_ERROR holds what the hang-up was (read with getsockopt, named as before: the socket's own error).
        if code != 0 { fail(SystemError("socket", errno: code)) } else { finish(.done) }
    }

    // MARK: ending

    private func fail(_ error: SystemError) {
        finish(error.errno == ECONNRESET || error.errno == EPIPE ? .reset : .failed(error))
    }

    private func finish(_ reason: ConnectionLossReason) {
        guard lifecycle != .closed else { return }
        moveState(.finished)
        reactor.unregister(fd: fd, closing: true)
        Glibc.close(fd)
        // Told on the next iteration, so a handler that closes never re-enters itself; then let go of it, which
        // breaks the usual handler ⇄ transport cycle.
        reactor.callSoon { [self] in
            let handler = self.handler
            self.handler = DetachedHandler.shared
            handler.connectionLost(reason)
        }
    }
}

/// Stands in for a handler a transport has let go of. It has no state, so one serves every transport.
private final class DetachedHandler: ConnectionHandler, Sendable {
    static let shared = DetachedHandler()

    func connectionMade(_ connection: TCPConnection) {}
    func dataReceived(_ bytes: UnsafeRawBufferPointer) {}
    func connectionLost(_ reason: ConnectionLossReason) {}
}
