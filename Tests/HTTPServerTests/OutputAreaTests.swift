@testable import HTTPServer
import Testing

@Suite("The output area")
struct OutputAreaTests {
    @Test func theCursorWritesNumbersAndBytes() {
        let area = OutputArea(capacity: 4)
        var out = area.cursor(reserving: 128)
        #expect(area.capacity >= 128)
        for value in [0, 7, 10, 200, 1_234_567, Int.max] {
            out.writeDecimal(value)
            out.write(" ")
        }
        out.writeHex(0)
        out.write(UInt8(ascii: " "))
        out.writeHex(0x1f2e)
        out.write(" done")
        #expect(String(decoding: out.bytes, as: UTF8.self) == "0 7 10 200 1234567 \(Int.max) 0 1f2e done")
    }
}
