#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets/) for SECONDS each (default
# 600), JOBS at a time (default 2: more gains nothing on 2 cores), and prints
# each target's executions. A crash is left in fuzz/artifacts/<target>/ and
# fails the script: fix it, then copy the input to fuzz/regressions/<target>/
# (tests/fuzz_corpus.rs replays it on stable). SANITIZER=address for ASan
# (default none: 2-3x the executions; the code under test is safe Rust). Needs a nightly toolchain and
# cargo-fuzz (`cargo install cargo-fuzz`); see docs/fuzzing.md.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-600}
shift || true
jobs=${JOBS:-2}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//')
fi
logs=${FUZZ_LOGS:-target/fuzz-logs}
mkdir -p "$logs"
san=${SANITIZER:-none}
cargo +nightly fuzz build -O -s "$san"
run() {
  local t=$1
  mkdir -p "corpus/$t" "artifacts/$t"
  # Inputs from regressions/ join the corpus read (never written).
  local extra=()
  [ -d "regressions/$t" ] && extra=("regressions/$t")
  if cargo +nightly fuzz run -O -s "$san" "$t" "corpus/$t" "${extra[@]}" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
      -print_final_stats=1 >"$logs/$t.log" 2>&1; then
    echo "$t: ok, $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$') execs in ${secs}s"
  else
    echo "$t: CRASH (see $logs/$t.log and artifacts/$t/)"
    return 1
  fi
}
status=0
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || status=1; done
  run "$t" &
done
while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || status=1; done
exit $status
