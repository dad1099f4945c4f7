#!/usr/bin/env bash
# bench/fuzz.sh [RUNS] — issue 22's long fuzzing: each libFuzzer target of
# the test build (build/test, scripts/setup.sh test: ASan + UBSan) for RUNS
# executions (default 10,000,000) over a scratch corpus seeded from the
# committed one, one target at a time at low priority. Prints, per target,
# the executions, the time, the coverage and whether anything crashed,
# leaked or timed out (the input is kept under the work directory).
# Not CI (which runs each for 60 s, tests/protocol/run_fuzz.sh).
#
# Targets: the frame decoder (fuzz_frame_decode), the Lisp reader
# (fuzz_lisp). The runtime session's frame handler has no native build
# yet, so it has no target here (docs: the runtime's own fuzzing is the
# mutation test in tests/runtime/session.test.mjs).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10000000}
build=build/test
work=${PB_FUZZ_WORK:-$(mktemp -d /tmp/pb-fuzz-XXXXXX)}
status=0
fuzz() { # NAME FUZZER SEEDS PATTERN
	local name=$1 fuzzer=$2 seeds=$3 pattern=$4 dir=$work/$1
	[[ -x $fuzzer ]] || { echo "$name: $fuzzer is missing (scripts/setup.sh test)"; status=1; return; }
	mkdir -p "$dir/corpus" "$dir/artifacts"
	find "$seeds" -name "$pattern" -exec cp -t "$dir/corpus" {} +
	local t0=$SECONDS
	if nice -n 15 "$fuzzer" -runs="$runs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
		"$dir/corpus" >"$dir/log" 2>&1; then
		local execs cov
		execs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$dir/log" | grep -oE '[0-9]+$' || echo '?')
		cov=$(grep -oE 'cov: [0-9]+' "$dir/log" | tail -1 | grep -oE '[0-9]+$' || echo '?')
		printf '%-20s %12s executions in %6d s, coverage %s edges, corpus %d: no crash, leak or timeout\n' \
			"$name" "$execs" $((SECONDS - t0)) "$cov" "$(ls "$dir/corpus" | wc -l)"
	else
		printf '%-20s FAILED after %d s: see %s (input under %s)\n' "$name" $((SECONDS - t0)) "$dir/log" "$dir/artifacts"
		tail -n 30 "$dir/log"
		status=1
	fi
}
echo "fuzzing each target for $runs executions (work: $work)"
fuzz frame_decode "$build/tests/protocol/fuzz_frame_decode" tests/protocol/vectors '*.msgpack'
fuzz lisp_reader "$build/tests/compiler/fuzz_lisp" tests/compiler/lisp_corpus '*.cljc'
exit $status
