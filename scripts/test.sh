#!/usr/bin/env bash
# The project's test command: installs what the tests need when it is missing (apt packages, prometheus_client
# from PyPI), then runs every suite.
# Usage: scripts/test.sh
# Passes: Swift tests (main and descriptor-heavy), the same under ThreadSanitizer and AddressSanitizer
# (SKIP_SANITIZERS=1 skips those; the main pass includes the HTTP/1.1 conformance cases), the shared conformance
# probe as an extra check when ../shared is there, the page in Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
pkg-config --exists libcurl 2>/dev/null || need+=(libcurl4-openssl-dev pkg-config)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v python3 >/dev/null 2>&1 || need+=(python3)
# A Chinese font, so the screenshots of the page in 中文 show characters rather than boxes.
[ -n "$(fc-list :lang=zh 2>/dev/null)" ] || need+=(fonts-wqy-microhei)
if [ "${#need[@]}" -gt 0 ]; then
    echo "== installing ${need[*]}"
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# axe-core for the page's accessibility check comes bundled in a PyPI package (the browser test needs nothing else).
if ! python3 -c 'import axe_selenium_python' 2>/dev/null; then
    echo "== installing axe-selenium-python"
    python3 -m pip install --quiet axe-selenium-python 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages axe-selenium-python
fi
# The metrics tests parse /metrics with Prometheus' reference Python parsers.
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
    echo "== installing prometheus_client (PyPI)"
    # pip where there is one (a Debian python3 needs --break-system-packages), else Debian's own package.
    python3 -m pip install --quiet prometheus_client 2>/dev/null \
        || python3 -m pip install --quiet --break-system-packages prometheus_client 2>/dev/null \
        || { if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
             $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-prometheus-client >/dev/null; }
    python3 -c 'import prometheus_client' || { echo "could not install prometheus_client" >&2; exit 1; }
fi

echo "== building"
swift build --build-tests 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\]' || true
swift build --build-tests >/dev/null

# Tests that hold thousands of descriptors run in a pass of their own (see Tests/*/DescriptorHeavy*Tests.swift),
# one at a time: two suites filling the descriptor table at once would hand each other the numbers they count on.
echo "== swift test (main pass)"
swift test --skip-build --skip DescriptorHeavy
echo "== swift test (descriptor-heavy pass)"
swift test --skip-build --filter DescriptorHeavy --no-parallel

if [ "${SKIP_SANITIZERS:-0}" != 1 ]; then
    # Separate build folders, so the sanitizer builds never clobber the plain one.
    echo "== swift test under ThreadSanitizer"
    swift build --build-tests --sanitize=thread --scratch-path .build-tsan >/dev/null
    # ThreadSanitizer sleeps a second at exit while any other thread lives (atexit_sleep_ms): the tests that time a
    # gateway process's exit measure the gateway, not that sleep.
    TSAN_OPTIONS=atexit_sleep_ms=0 swift test --skip-build --sanitize=thread --scratch-path .build-tsan --skip DescriptorHeavy
    echo "== swift test under AddressSanitizer"
    swift build --build-tests --sanitize=address --scratch-path .build-asan 2>&1 | grep -E 'error|warning: .*swift' || true
    # Leak checking is off: test fixtures deliberately keep reactors and handlers alive to the end, and XCTest's own
    # runner objects live until exit; memory errors (overflows, use-after-free) are still fatal.
    ASAN_OPTIONS=detect_leaks=0 swift test --skip-build --sanitize=address --scratch-path .build-asan --skip DescriptorHeavy
fi

mkdir -p artifacts
echo "== the shared HTTP/1.1 conformance probe (an extra check; skipped without ../shared)"
scripts/conformance.sh .build/debug/poetry

echo "== the page in headless Chromium"
python3 scripts/browser_test.py .build/debug/poetry
