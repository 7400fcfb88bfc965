/// A request's header fields in the order received, read straight from the head's bytes. Names keep their case;
/// look-ups ignore it. Strings are made only for the fields asked for.
public struct HTTPRequestHeaders: Sendable, Sequence {
    let storage: HeadStorage

    public var count: Int { storage.fieldCount }

    /// The first value of `name`, case-insensitively.
    public subscript(name: String) -> String? {
        guard let index = firstIndex(name) else { return nil }
        return value(at: index)
    }

    public func values(_ name: String) -> [String] {
        var name = name
        return name.withUTF8 { wanted in
            (0..<count).filter { storage.fieldName($0, equals: wanted) }.map { value(at: $0) }
        }
    }

    public func contains(_ name: String) -> Bool { firstIndex(name) != nil }

    /// Calls `body` with the first value of `name` as bytes, or nil without one: no string is made, for checks
    /// that run on every request.
    public func withFirstValue<R>(_ name: StaticString, _ body: (UnsafeBufferPointer<UInt8>?) -> R) -> R {
        let wanted = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        guard let index = (0..<count).first(where: { storage.fieldName($0, equals: wanted) }) else { return body(nil) }
        let span = storage.span(index)
        return storage.withBytes(span.valueStart, span.valueEnd, body)
    }

    private func firstIndex(_ name: String) -> Int? {
        var name = name
        return name.withUTF8 { wanted in
            (0..<count).first { storage.fieldName($0, equals: wanted) }
        }
    }

    private func value(at index: Int) -> String {
        let span = storage.span(index)
        return storage.string(span.valueStart, span.valueEnd)
    }

    public struct Iterator: IteratorProtocol {
        let headers: HTTPRequestHeaders
        var index = 0

        public mutating func next() -> (name: String, value: String)? {
            guard index < headers.count else { return nil }
            let span = headers.storage.span(index)
            index += 1
            return (headers.storage.string(span.nameStart, span.nameEnd), headers.storage.string(span.valueStart, span.valueEnd))
        }
    }

    public func makeIterator() -> Iterator { Iterator(headers: self) }
}
