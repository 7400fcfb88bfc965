// swift-tools-version:6.0
import PackageDescription

// Layers, bottom to top: Reactor → Poetry, HTTP1 (the wire protocol: no Reactor) → HTTPServer (HTTP1 on the
// Reactor) → Gateway → the `poetry` executable. Nothing below imports what is above it: each target lists only
// what it may import, so the layering is enforced here, not by convention.
let package = Package(
    name: "poetry-gateway",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "poetry", targets: ["PoetryCLI"]),
        .library(name: "Reactor", targets: ["Reactor"]),
        .library(name: "HTTP1", targets: ["HTTP1"]),
        .library(name: "HTTPServer", targets: ["HTTPServer"]),
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
        // Whole-file reads for poems and page assets: below both layers that need them, and no part of the loop.
        .target(name: "Files"),
        .target(name: "Poetry", dependencies: ["Reactor", "Files"]),
        // The wire protocol (parser, heads, the connection state machine): bytes and times in, actions out; it
        // cannot import the reactor, so it is tested without sockets or clocks.
        .target(name: "HTTP1"),
        // HTTP1 on the reactor: the transport glue, response writer, router, static files, JSON.
        .target(name: "HTTPServer", dependencies: ["HTTP1", "Reactor", "Files", .product(name: "Logging", package: "swift-log")]),
        .target(name: "Gateway", dependencies: ["Reactor", "HTTP1", "HTTPServer", "Poetry", .product(name: "Logging", package: "swift-log")]),
        .executableTarget(
            name: "PoetryCLI",
            dependencies: ["Reactor", "Poetry", "Gateway", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Load generator for Benchmarks/stream_scale.py, on the project's own reactor.
        .executableTarget(name: "PoetryBench", dependencies: ["Reactor"]),
        // libcurl drives the integration tests only; the product never links it.
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        // What tests share: a manual clock, a fake transport and the driver that runs a connection's state machine
        // on them (no socket, no real time), and the one harness that runs a reactor on a thread of its own.
        .target(name: "TestSupport", dependencies: ["HTTP1", "Reactor"], path: "Tests/Support"),
        .testTarget(name: "ReactorTests", dependencies: ["Reactor", "TestSupport"]),
        .testTarget(name: "PoetryTests", dependencies: ["Poetry", "Reactor", "TestSupport"]),
        // The `poetry` command's own parsing, in process (the CLI tests in PoetryTests run the binary).
        .testTarget(name: "PoetryCLITests", dependencies: ["PoetryCLI", "Poetry", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(name: "HTTP1Tests", dependencies: ["HTTP1", "TestSupport"]),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer", "HTTP1", "Reactor", "TestSupport"]),
        // Driven by libcurl: the HTTP server and the gateway over real sockets.
        // Resources/: data the tests read by path (the HTTP/1.1 conformance cases), not built.
        .testTarget(name: "IntegrationTests", dependencies: ["Gateway", "HTTP1", "HTTPServer", "Poetry", "Reactor", "CCurl", "TestSupport"],
                    exclude: ["Resources"]),
    ],
    swiftLanguageModes: [.v6]
)
