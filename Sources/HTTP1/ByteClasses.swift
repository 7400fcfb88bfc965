/// A set of bytes as a 256-bit map: membership is a shift and a mask, with no table to load lazily (a global
/// array costs a once-check on every access, and these run for every byte of every head).
struct ByteSet: Sendable {
    let low: UInt64, high: UInt64

    /// Every class here is ASCII except `fieldValue`, which also allows obs-text (0x80–0xFF): `upperHalf` says so.
    let upperHalf: Bool

    @inline(__always)
    func contains(_ byte: UInt8) -> Bool {
        switch byte {
        case 0..<64: return low >> UInt64(byte) & 1 == 1
        case 64..<128: return high >> UInt64(byte &- 64) & 1 == 1
        default: return upperHalf
        }
    }

    @inline(__always)
    func containsAll(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        for byte in bytes where !contains(byte) { return false }
        return true
    }
}

/// Character classes of RFC 9110/9112. The bit maps are generated from the definitions written out in
/// `ByteClassTests`, which checks every byte against them.
enum ByteClass {
    /// tchar: what a method, a field name or a token may contain.
    static var token: ByteSet { ByteSet(low: 0x03ff_6cfa_0000_0000, high: 0x57ff_ffff_c7ff_fffe, upperHalf: false) }

    /// Bytes allowed in a request target: RFC 3986 unreserved, reserved and '%'. No fragment ('#'), no quotes,
    /// spaces, controls or raw non-ASCII.
    static var target: ByteSet { ByteSet(low: 0xafff_fff2_0000_0000, high: 0x47ff_fffe_afff_ffff, upperHalf: false) }

    /// field-vchar, SP and HTAB: what a field value may contain (obs-text allowed, controls not).
    static var fieldValue: ByteSet { ByteSet(low: 0xffff_ffff_0000_0200, high: 0x7fff_ffff_ffff_ffff, upperHalf: true) }

    /// What a Host value may contain: reg-name, IP literals and a port.
    static var host: ByteSet { ByteSet(low: 0x2fff_7ff2_0000_0000, high: 0x47ff_fffe_afff_fffe, upperHalf: false) }

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
