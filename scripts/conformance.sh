#!/usr/bin/env bash
# Runs the black-box HTTP/1.1 probe (../shared/http1-conformance) against a fresh gateway; fails on any WARN or FAIL.
# Usage: scripts/conformance.sh [path/to/poetry]
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:-.build/debug/poetry}
probe=../shared/http1-conformance/h1probe.py
if [ ! -f "$probe" ]; then
    echo "conformance: $probe not found (it comes with the project's shared/ folder)" >&2
    exit 1
fi
log=$(mktemp)
"$binary" gateway --port 0 >"$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
    port=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1 | sed 's/.*://') || true
    [ -n "${port:-}" ] && break
    sleep 0.05
done
python3 "$probe" --port "$port" --strict --json artifacts/conformance.json | tail -16
