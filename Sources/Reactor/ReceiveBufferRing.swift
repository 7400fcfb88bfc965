/// The size of io_uring's provided-buffer ring, from which multishot receives take their buffers: `count`
/// buffers (a power of two) of `size` bytes each, allocated once per reactor.
public struct ReceiveBufferRing: Sendable, Equatable {
    public var count: Int
    public var size: Int

    public init(count: Int, size: Int) {
        precondition(count > 0 && count <= 32768 && count & (count - 1) == 0, "a buffer ring holds a power of two up to 32768")
        precondition(size > 0 && size <= Int(UInt32.max), "a buffer's size must fit the kernel's 32 bits")
        self.count = count
        self.size = size
    }

    /// 256 buffers of 16 KiB (4 MiB per reactor): an HTTP request or a poem's read fits in one. Where the kernel
    /// consumes buffers incrementally (6.12), small receives share a buffer, so a loop iteration with thousands of
    /// them (a fan-out's turn) does not run the ring dry; where it does run dry, the receive starts again.
    public static let standard = ReceiveBufferRing(count: 256, size: 16 * 1024)
}
