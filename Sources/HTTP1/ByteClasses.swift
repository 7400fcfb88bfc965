/// Character classes of RFC 9110/9112 as lookup tables over bytes.
enum ByteClass {
    private static func table(_ build: (UInt8) -> Bool) -> [Bool] {
        (0...255).map { build(UInt8($0)) }
    }

    /// tchar: what a method, a field name or a token may contain.
    static let token: [Bool] = table { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// Bytes allowed in a request target: RFC 3986 unreserved, reserved and '%'. No fragment ('#'), no
    /// quotes, spaces, controls or raw non-ASCII.
    static let target: [Bool] = table { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "-._~:/?[]@!$&'()*+,;=%".utf8.contains(byte)
        }
    }

    /// field-vchar, SP and HTAB: what a field value may contain (obs-text allowed, controls not).
    static let fieldValue: [Bool] = table { byte in
        byte == 0x09 || (byte >= 0x20 && byte != 0x7F)
    }

    /// What a Host value may contain: reg-name, IP literals and a port.
    static let host: [Bool] = table { byte in
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "-._~!$&'()*+,;=:[]%".utf8.contains(byte)
        }
    }

    static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    static let cr = UInt8(ascii: "\r")
    static let lf = UInt8(ascii: "\n")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let colon = UInt8(ascii: ":")
}

extension UInt8 {
    /// ASCII lower case, for case-insensitive comparison of names and tokens.
    @inline(__always)
    var lowercasedASCII: UInt8 { self >= 65 && self <= 90 ? self | 0x20 : self }
}

/// Case-insensitive comparison of ASCII bytes with a lower-case literal.
@inline(__always)
func equalsLowercase<C: Collection>(_ bytes: C, _ literal: StaticString) -> Bool where C.Element == UInt8 {
    guard bytes.count == literal.utf8CodeUnitCount else { return false }
    var index = 0
    for byte in bytes {
        if byte.lowercasedASCII != literal.utf8Start[index] { return false }
        index += 1
    }
    return true
}
