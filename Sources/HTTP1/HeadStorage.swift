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
        /// Tail bytes asked for at creation: what a reuse may fill.
        var tailCapacity: Int
    }

    private static let spanSize = MemoryLayout<FieldSpan>.stride

    /// Storage holding a copy of `bytes` with room for up to `fieldCapacity` field spans.
    static func make(copying bytes: UnsafeBufferPointer<UInt8>, fieldCapacity: Int) -> HeadBuffer {
        // Room for a typical head at least, so the buffer can be reused for the connection's next requests.
        let tailCapacity = max(fieldCapacity * spanSize + bytes.count, 512)
        let buffer = HeadBuffer.create(minimumCapacity: tailCapacity) { _ in
            Counts(byteCount: 0, fieldCapacity: 0, fieldCount: 0, tailCapacity: tailCapacity)
        }
        let storage = unsafeDowncast(buffer, to: HeadBuffer.self)
        _ = storage.refill(copying: bytes, fieldCapacity: fieldCapacity)
        return storage
    }

    /// Makes this buffer hold `bytes` with room for `fieldCapacity` spans and no fields, if it fits. Only for a
    /// buffer nothing else references (the parser checks), since heads made from it read it.
    func refill(copying bytes: UnsafeBufferPointer<UInt8>, fieldCapacity: Int) -> Bool {
        withUnsafeMutablePointers { counts, tail in
            guard fieldCapacity * Self.spanSize + bytes.count <= counts.pointee.tailCapacity else { return false }
            counts.pointee.byteCount = bytes.count
            counts.pointee.fieldCapacity = fieldCapacity
            counts.pointee.fieldCount = 0
            if let base = bytes.baseAddress {
                (tail + fieldCapacity * Self.spanSize).update(from: base, count: bytes.count)
            }
            return true
        }
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

/// A head's buffer as the head holds it. @unchecked Sendable: the parser writes the buffer before the head exists,
/// and refills it for a later head only once no head holds it (`isKnownUniquelyReferenced`, whose acquiring load
/// pairs with the releasing drop of the last other reference), so sharing a head between threads only shares reads.
struct HeadStorage: @unchecked Sendable {
    private let buffer: HeadBuffer

    init(_ buffer: HeadBuffer) {
        self.buffer = buffer
    }

    var fieldCount: Int { buffer.fieldCount }
    /// Which buffer this is, for tests of its reuse.
    var bufferIdentity: ObjectIdentifier { ObjectIdentifier(buffer) }
    func span(_ index: Int) -> FieldSpan { buffer.span(index) }
    func string(_ start: Int32, _ end: Int32) -> String { buffer.string(start, end) }
    func withBytes<R>(_ start: Int32, _ end: Int32, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        buffer.withBytes(start, end, body)
    }
    func fieldName(_ index: Int, equals name: UnsafeBufferPointer<UInt8>) -> Bool { buffer.fieldName(index, equals: name) }
}
