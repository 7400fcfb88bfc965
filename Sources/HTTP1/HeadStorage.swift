/// Where one header field lies in its head's bytes (offsets from the head's first byte).
struct FieldSpan: Sendable, Equatable {
    var nameStart: Int32
    var nameEnd: Int32
    var valueStart: Int32
    var valueEnd: Int32
}

/// A request head's bytes and its header fields' spans in one allocation, written once by the parser and shared
/// by every copy of the head. Strings are made from it only when someone asks for a field.
///
/// Layout of the tail: `fieldCapacity` spans, then the head's bytes.
final class HeadBuffer: ManagedBuffer<HeadBuffer.Counts, UInt8> {
    struct Counts {
        var byteCount: Int
        var fieldCapacity: Int
        var fieldCount: Int
    }

    private static let spanSize = MemoryLayout<FieldSpan>.stride

    /// Storage holding a copy of `bytes` with room for up to `fieldCapacity` field spans.
    static func make(copying bytes: UnsafeBufferPointer<UInt8>, fieldCapacity: Int) -> HeadBuffer {
        let buffer = HeadBuffer.create(minimumCapacity: fieldCapacity * spanSize + bytes.count) { _ in
            Counts(byteCount: bytes.count, fieldCapacity: fieldCapacity, fieldCount: 0)
        }
        let storage = unsafeDowncast(buffer, to: HeadBuffer.self)
        storage.withUnsafeMutablePointerToElements { tail in
            if let base = bytes.baseAddress {
                (tail + fieldCapacity * spanSize).initialize(from: base, count: bytes.count)
            }
        }
        return storage
    }

    /// Records a field; only the parser calls this, before the storage is shared.
    func append(_ span: FieldSpan) {
        withUnsafeMutablePointers { counts, tail in
            precondition(counts.pointee.fieldCount < counts.pointee.fieldCapacity)
            UnsafeMutableRawPointer(tail + counts.pointee.fieldCount * Self.spanSize).storeBytes(of: span, as: FieldSpan.self)
            counts.pointee.fieldCount += 1
        }
    }

    var fieldCount: Int { withUnsafeMutablePointerToHeader { $0.pointee.fieldCount } }

    func span(_ index: Int) -> FieldSpan {
        withUnsafeMutablePointerToElements { tail in
            UnsafeRawPointer(tail + index * Self.spanSize).loadUnaligned(as: FieldSpan.self)
        }
    }

    /// Calls `body` with the bytes from `start` to `end` of the head.
    @inline(__always)
    func withBytes<R>(_ start: Int32, _ end: Int32, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        withUnsafeMutablePointers { counts, tail in
            let base = tail + counts.pointee.fieldCapacity * Self.spanSize
            return body(UnsafeBufferPointer(start: base + Int(start), count: Int(end - start)))
        }
    }

    func string(_ start: Int32, _ end: Int32) -> String {
        withBytes(start, end) { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether the field `index`'s name is `name`, ignoring ASCII case.
    func fieldName(_ index: Int, equals name: UnsafeBufferPointer<UInt8>) -> Bool {
        let span = span(index)
        guard Int(span.nameEnd - span.nameStart) == name.count else { return false }
        return withBytes(span.nameStart, span.nameEnd) { bytes in
            for offset in 0..<bytes.count where bytes[offset].lowercasedASCII != name[offset].lowercasedASCII { return false }
            return true
        }
    }
}

/// A head's buffer as the head holds it. @unchecked Sendable: the parser writes the buffer before the head exists
/// and nothing writes it after, so sharing it between threads only ever shares reads.
struct HeadStorage: @unchecked Sendable {
    private let buffer: HeadBuffer

    init(_ buffer: HeadBuffer) {
        self.buffer = buffer
    }

    var fieldCount: Int { buffer.fieldCount }
    func span(_ index: Int) -> FieldSpan { buffer.span(index) }
    func string(_ start: Int32, _ end: Int32) -> String { buffer.string(start, end) }
    func withBytes<R>(_ start: Int32, _ end: Int32, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        buffer.withBytes(start, end, body)
    }
    func fieldName(_ index: Int, equals name: UnsafeBufferPointer<UInt8>) -> Bool { buffer.fieldName(index, equals: name) }
}
