/// Formats a duration the way Python prints a `datetime.timedelta`, as the seed's output does:
/// `0:00:10.126361`, or `0:00:10` when the microseconds are zero.
public func formatTimedelta(_ seconds: Double) -> String {
    let totalMicroseconds = Int64((max(0, seconds) * 1_000_000).rounded())
    let microseconds = totalMicroseconds % 1_000_000
    let totalSeconds = totalMicroseconds / 1_000_000
    let hours = totalSeconds / 3600
    let minutes = (totalSeconds % 3600) / 60
    let secs = totalSeconds % 60
    var text = "\(hours):\(twoDigits(minutes)):\(twoDigits(secs))"
    if microseconds != 0 {
        let digits = String(microseconds)
        text += "." + String(repeating: "0", count: 6 - digits.count) + digits
    }
    return text
}

private func twoDigits(_ value: Int64) -> String {
    value < 10 ? "0\(value)" : "\(value)"
}
