#!/usr/bin/env bash
# test.sh — README command 2: installs what is missing, builds the test
# configuration (clang-14, ASan + UBSan, libFuzzer) and runs every test with
# ctest: native unit tests, the same protocol tests compiled to wasm and run
# in node, the vectors against python3-msgpack, the docs check and a bounded
# fuzz run (60 s under CI=true, 10 s otherwise; PB_FUZZ_SECONDS overrides).
# It also builds the release configuration (build/release, gcc), so that
# README command 1 keeps building. Extra arguments go to ctest (e.g. scripts/test.sh -R frames).
set -euo pipefail
cd "$(dirname "$0")/.."
# The release build (gcc -O2, what scripts/demo.sh runs) must build too: gcc
# warns about things clang does not.
scripts/setup.sh release
scripts/setup.sh test
export NODE_PATH=/usr/share/nodejs EMSDK_PYTHON=/usr/bin/python3
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd build/test
exec ctest --output-on-failure -j "$(nproc)" "$@"
