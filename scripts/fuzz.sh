#!/usr/bin/env bash
# Builds the libFuzzer target over the HTTP1 module (parser and connection state machine, with AddressSanitizer)
# and runs it. HTTP1 imports nothing of ours, so its sources compile alone; asserts stay on, so an illegal state
# change of the connection traps.
# Usage: scripts/fuzz.sh [SECONDS] [extra libFuzzer flags]     e.g. scripts/fuzz.sh 600 -runs=10000000
# A crash leaves crash-* in artifacts/fuzz/; turn each into a regression case in Tests/HTTP1Tests/ParserTests.swift.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
mkdir -p .build/fuzz artifacts/fuzz .build/fuzz/corpus
files=(Sources/HTTP1/*.swift)
swiftc -O -assert-config Debug -sanitize=fuzzer,address -parse-as-library -module-name HTTP1Fuzz "${files[@]}" Fuzz/HTTPParserFuzz.swift \
    -o .build/fuzz/http-parser-fuzz
test -x .build/fuzz/http-parser-fuzz
# New inputs go to .build/fuzz/corpus; the committed seeds in Fuzz/corpus are only read.
.build/fuzz/http-parser-fuzz -max_total_time="$seconds" -max_len=4096 -timeout=5 -rss_limit_mb=2048 \
    -artifact_prefix=artifacts/fuzz/ -print_final_stats=1 "$@" .build/fuzz/corpus Fuzz/corpus
