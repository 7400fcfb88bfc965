// swift-tools-version: 6.0
// A SwiftNIO HTTP/1.1 server for the benchmarks to compare against: not part of the product, built only by
// Benchmarks/http_bench.py.
import PackageDescription

let package = Package(
    name: "nio-peer",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
    ],
    targets: [
        .executableTarget(
            name: "NIOPeer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ]
)
