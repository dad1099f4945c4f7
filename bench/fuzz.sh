#!/usr/bin/env bash
# bench/fuzz.sh [RUNS [TARGET...]] — issue 22's long fuzzing: each libFuzzer
# target of the test build (build/test, scripts/setup.sh test: ASan + UBSan)
# for RUNS executions (default 10,000,000) over a scratch corpus seeded from
# the committed one, one target at a time at the lowest priority. Prints,
# per target, the executions, the time, exec/s, the coverage, the corpus
# and whether anything crashed, leaked or timed out (the input is kept under
# the work directory). Not CI (which runs each for 60 s:
# tests/protocol/run_fuzz.sh).
#
# Targets (all by default): frame_decode (the frame decoder,
# tests/protocol/fuzz_frame_decode.c), lisp_reader (the Lisp reader,
# tests/compiler/fuzz_lisp.c), session (the runtime session's frame handler
# built natively, tests/runtime/native/fuzz_session.c).
# PB_FUZZ_WORK=DIR reuses a work directory (and the corpus grown there).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10000000}
shift $(($# ? 1 : 0))
targets=${*:-frame_decode lisp_reader session}
build=build/test
work=${PB_FUZZ_WORK:-$(mktemp -d /tmp/pb-fuzz-XXXXXX)}
status=0
fuzz() { # NAME FUZZER SEEDS PATTERN
	local name=$1 fuzzer=$2 seeds=$3 pattern=$4 dir=$work/$1
	[[ -x $fuzzer ]] || { echo "$name: $fuzzer is missing (scripts/setup.sh test)"; status=1; return; }
	mkdir -p "$dir/corpus" "$dir/artifacts"
	find "$seeds" -name "$pattern" -exec cp -t "$dir/corpus" {} +
	local t0=$SECONDS
	if nice -n 19 "$fuzzer" -runs="$runs" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
		"$dir/corpus" >"$dir/log" 2>&1; then
		local execs cov
		execs=$(grep -oE '^stat::number_of_executed_units: *[0-9]+' "$dir/log" | grep -oE '[0-9]+$' || echo '?')
		cov=$(grep -oE 'cov: [0-9]+' "$dir/log" | tail -1 | grep -oE '[0-9]+$' || echo '?')
		local secs=$((SECONDS - t0))
		printf '%-14s %10s executions in %5d s (%s exec/s), coverage %s edges, corpus %d: no crash, leak or timeout\n' \
			"$name" "$execs" "$secs" "$(( ${execs//\?/0} / (secs ? secs : 1) ))" "$cov" "$(ls "$dir/corpus" | wc -l)"
	else
		printf '%-20s FAILED after %d s: see %s (input under %s)\n' "$name" $((SECONDS - t0)) "$dir/log" "$dir/artifacts"
		tail -n 30 "$dir/log"
		status=1
	fi
}
echo "fuzzing $targets for $runs executions each (work: $work)"
for t in $targets; do
	case $t in
	frame_decode) fuzz frame_decode "$build/tests/protocol/fuzz_frame_decode" tests/protocol/vectors '*.msgpack' ;;
	lisp_reader) fuzz lisp_reader "$build/tests/compiler/fuzz_lisp" tests/compiler/lisp_corpus '*.cljc' ;;
	session) fuzz session "$build/tests/runtime/native/fuzz_session" tests/runtime/native/corpus '*.bin' ;;
	*) echo "no fuzz target $t (frame_decode, lisp_reader, session)" >&2; exit 2 ;;
	esac
done
exit $status
