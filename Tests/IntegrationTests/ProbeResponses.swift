/// The conformance probe's reading of a server's byte stream (`h1probe.py`'s `parse_responses`, kept as lenient
/// as it is): how many final responses came, with which statuses, and whether bytes that are not a response
/// were left over.
enum ProbeResponses {
    struct Response { let status: Int }
    enum Leftover { case incomplete, garbage }

    static func parse(_ buffer: [UInt8], methods: [String]) -> (finals: [Response], leftover: Leftover?) {
        var finals: [Response] = []
        var index = 0
        let count = buffer.count
        func find(_ needle: [UInt8], from start: Int) -> Int? {
            guard start < count, let range = buffer[start...].firstRange(of: needle) else { return nil }
            return range.lowerBound
        }
        while index < count {
            // Stray CRLFs between responses are tolerated.
            while index + 1 < count && buffer[index] == 13 && buffer[index + 1] == 10 { index += 2 }
            if index >= count { break }
            guard let status = statusLine(buffer, at: index) else {
                let rest = buffer[index..<min(count, index + 9)]
                let incomplete = Array("HTTP/1.1 ".utf8).starts(with: rest) || Array("HTTP/1.0 ".utf8).starts(with: rest)
                return (finals, incomplete ? .incomplete : .garbage)
            }
            let crlfEnd = find([13, 10, 13, 10], from: index)
            let lfEnd = find([10, 10], from: index)
            let headEnd: Int
            switch (crlfEnd, lfEnd) {
            case (nil, nil): return (finals, .incomplete)
            case (let crlf?, let lf?): headEnd = lf < crlf ? lf + 2 : crlf + 4
            case (let crlf?, nil): headEnd = crlf + 4
            case (nil, let lf?): headEnd = lf + 2
            }
            let headers = headerFields(buffer[index..<headEnd])
            index = headEnd
            if (100..<200).contains(status) {
                if status == 101 { return (finals, nil) }
                continue
            }
            let method = finals.count < methods.count ? methods[finals.count] : "GET"
            let transferEncoding = headers.filter { $0.name == "transfer-encoding" }.map(\.value).joined(separator: ",").lowercased()
            let contentLengths = headers.filter { $0.name == "content-length" }.map(\.value)
            let bodyLength: Int
            if method == "HEAD" || status == 204 || status == 304 {
                bodyLength = 0
            } else if transferEncoding.contains("chunked") {
                var position = index
                chunks: while true {
                    guard let lineEnd = find([10], from: position) else { return (finals + [Response(status: status)], .incomplete) }
                    let sizeText = String(decoding: buffer[position..<lineEnd], as: UTF8.self)
                        .split(separator: ";", omittingEmptySubsequences: false)[0].trimmingWhitespace
                    guard let size = Int(sizeText, radix: 16) else { return (finals + [Response(status: status)], .garbage) }
                    position = lineEnd + 1
                    if size == 0 {
                        // Trailer lines until an empty one.
                        while true {
                            guard let end = find([10], from: position) else { return (finals + [Response(status: status)], .incomplete) }
                            let empty = buffer[position..<end].allSatisfy { $0 == 13 || $0 == 32 || $0 == 9 }
                            position = end + 1
                            if empty { break chunks }
                        }
                    }
                    position += size
                    if position + 1 < count && buffer[position] == 13 && buffer[position + 1] == 10 {
                        position += 2
                    } else if position < count && buffer[position] == 10 {
                        position += 1
                    } else if position >= count {
                        return (finals + [Response(status: status)], .incomplete)
                    }
                }
                bodyLength = position - index
            } else if let declared = contentLengths.first {
                bodyLength = Int(declared) ?? count - index
                if index + bodyLength > count { return (finals + [Response(status: status)], .incomplete) }
            } else {
                bodyLength = count - index  // delimited by the close
            }
            finals.append(Response(status: status))
            index += bodyLength
        }
        return (finals, nil)
    }

    /// `HTTP/d.d ddd` then optionally a space and a reason, then a line end: the status, or nil.
    private static func statusLine(_ buffer: [UInt8], at start: Int) -> Int? {
        func isDigit(_ offset: Int) -> Bool { start + offset < buffer.count && (48...57).contains(buffer[start + offset]) }
        guard buffer.count - start >= 13, buffer[start..<start + 5].elementsEqual("HTTP/".utf8), isDigit(5),
              buffer[start + 6] == UInt8(ascii: "."), isDigit(7), buffer[start + 8] == 32, isDigit(9), isDigit(10), isDigit(11)
        else { return nil }
        let status = buffer[(start + 9)...(start + 11)].reduce(0) { $0 * 10 + Int($1 - 48) }
        var position = start + 12
        if buffer[position] == 32 {
            while position < buffer.count && buffer[position] != 13 && buffer[position] != 10 { position += 1 }
        }
        if position < buffer.count && buffer[position] == 13 { position += 1 }
        return position < buffer.count && buffer[position] == 10 ? status : nil
    }

    /// The head's fields after the status line, names lowercased, both sides trimmed. Split on bytes: a String
    /// would keep "\r\n" as one character.
    private static func headerFields(_ head: ArraySlice<UInt8>) -> [(name: String, value: String)] {
        head.split(separator: 10, omittingEmptySubsequences: false).dropFirst().compactMap { line in
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return nil }
            let name = String(decoding: line[..<colon], as: UTF8.self).trimmingWhitespace.lowercased()
            return (name, String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingWhitespace)
        }
    }
}

private extension StringProtocol {
    var trimmingWhitespace: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
