// swift-tools-version:6.0
import PackageDescription

// Layers, bottom to top: Reactor → (HTTP1, Poetry) → Gateway → the `poetry` executable.
// Nothing below imports what is above it.
let package = Package(
    name: "poetry-gateway",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "poetry", targets: ["PoetryCLI"]),
        .library(name: "Reactor", targets: ["Reactor"]),
        .library(name: "HTTP1", targets: ["HTTP1"]),
        .library(name: "Poetry", targets: ["Poetry"]),
        .library(name: "Gateway", targets: ["Gateway"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(name: "CReactor"),
        .target(name: "Reactor", dependencies: ["CReactor", .product(name: "Logging", package: "swift-log")]),
        .target(name: "Poetry", dependencies: ["Reactor"]),
        .target(name: "HTTP1", dependencies: ["Reactor", .product(name: "Logging", package: "swift-log")]),
        .target(name: "Gateway", dependencies: ["Reactor", "HTTP1", "Poetry", .product(name: "Logging", package: "swift-log")]),
        .executableTarget(
            name: "PoetryCLI",
            dependencies: ["Reactor", "Poetry", "Gateway", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Load generator for Benchmarks/stream_scale.py, on the project's own reactor.
        .executableTarget(name: "PoetryBench", dependencies: ["Reactor"]),
        // libcurl drives the integration tests only; the product never links it.
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor"]),
        .testTarget(name: "PoetryTests", dependencies: ["Poetry", "Reactor"]),
        .testTarget(name: "HTTP1Tests", dependencies: ["HTTP1", "Reactor"]),
        // Driven by libcurl: the HTTP server and the gateway over real sockets.
        .testTarget(name: "IntegrationTests", dependencies: ["Gateway", "HTTP1", "Poetry", "Reactor", "CCurl"]),
    ],
    swiftLanguageModes: [.v6]
)
