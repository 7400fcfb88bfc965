#!/usr/bin/env bash
# An extra check beside the Swift suite's own copy of the cases (Tests/IntegrationTests/ConformanceTests.swift):
# runs the shared black-box HTTP/1.1 probe (../shared/http1-conformance) against a fresh gateway process and fails
# on any WARN or FAIL. Without ../shared (a plain clone) it says so and skips: the Swift suite has the cases.
# Usage: scripts/conformance.sh [path/to/poetry]
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-.build/debug/poetry}
probe=../shared/http1-conformance/h1probe.py
if [ ! -f "$probe" ]; then
    echo "conformance: skipped, $probe not found (the Swift suite's ConformanceTests ran the same cases)"
    exit 0
fi
mkdir -p artifacts
# Both the default backend and io_uring, whose receives arrive by completion in the kernel's own pieces.
for reactor in epoll io_uring; do
    log=$(mktemp)
    "$binary" gateway --port 0 --reactor "$reactor" >"$log" 2>&1 &
    pid=$!
    trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
    port=
    for _ in $(seq 100); do
        port=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/.*://') || true
        [ -n "${port:-}" ] && break
        sleep 0.05
    done
    if [ -z "$port" ]; then
        echo "conformance: the gateway (--reactor $reactor) did not start:" >&2
        cat "$log" >&2
        exit 1
    fi
    echo "== --reactor $reactor"
    python3 "$probe" --port "$port" --strict --json "artifacts/conformance-$reactor.json" | tail -16
    kill $pid 2>/dev/null || true
    wait $pid 2>/dev/null || true
    rm -f "$log"
done
