extension StringProtocol {
    /// Without leading and trailing white space (spaces, tabs, CR, LF…): the one trimming helper every layer uses.
    public func trimmingSpaces() -> String {
        var characters = self[...]
        while let first = characters.first, first.isWhitespace { characters = characters.dropFirst() }
        while let last = characters.last, last.isWhitespace { characters = characters.dropLast() }
        return String(characters)
    }
}
