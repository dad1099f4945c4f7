#!/usr/bin/env bash
# run_fuzz.sh FUZZER SEED_DIR WORK_DIR [PATTERN] — runs a libFuzzer target for a
# bounded time over a scratch corpus seeded from SEED_DIR (the committed
# corpus is never modified) and fails on any crash, leak or timeout.
set -euo pipefail
fuzzer=$1 seeds=$2 work=$3 pattern=${4:-*.msgpack}
secs=${PB_FUZZ_SECONDS:-$([[ ${CI:-} == true ]] && echo 60 || echo 10)}
rm -rf -- "$work"
mkdir -p -- "$work/corpus" "$work/artifacts"
find "$seeds" -name "$pattern" -exec cp -t "$work/corpus" {} +
echo "fuzzing $(basename "$fuzzer") for ${secs}s from $(ls "$work/corpus" | wc -l) seeds"
if "$fuzzer" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$work/artifacts/" \
	"$work/corpus" >"$work/log" 2>&1; then
	grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$work/log" || true
	# A run without coverage feedback would pass while testing nothing.
	cov=$(grep -oE 'DONE +cov: [0-9]+' "$work/log" | grep -oE '[0-9]+$' || echo 0)
	if ((cov < 200)); then
		echo "coverage is only $cov edges: is the library instrumented?"
		echo "0 passed, 1 failed"
		exit 1
	fi
	echo "1 passed, 0 failed"
else
	tail -n 40 "$work/log"
	echo "crash input saved under $work/artifacts"
	echo "0 passed, 1 failed"
	exit 1
fi
