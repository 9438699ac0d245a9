#!/usr/bin/env bash
# Fuzzes every parser the network or a user's file feeds (hub/fuzz/fuzz_targets/) with
# cargo-fuzz (libFuzzer, nightly), each for SECONDS, and prints per target: executions,
# coverage, corpus, peak memory, and crashes / slow inputs (libFuzzer stops at the
# first; the input is saved under hub/fuzz/artifacts/<target>/). Figures go to BENCHMARKS.md.
#   bash tests/fuzz.sh [TARGET ...] [SECONDS]     (default: every target, 60 s each)
set -euo pipefail
cd "$(dirname "$0")/../hub/fuzz"
seconds=60
targets=()
for a in "$@"; do
  if [[ "$a" =~ ^[0-9]+$ ]]; then seconds=$a; else targets+=("$a"); fi
done
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(find fuzz_targets -name '*.rs' -printf '%f\n' | sed 's/\.rs$//' | sort)
fi
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
toolchain=+nightly
rustup toolchain list | grep -q '^nightly' || toolchain=""   # else RUSTC_BOOTSTRAP on stable
export RUSTC_BOOTSTRAP=1
printf '%-14s %12s %10s %8s %8s %9s  %s\n' target executions exec/s cov corpus rss_mb result
failed=0
for t in "${targets[@]}"; do
  this=0
  log=$(mktemp)
  mkdir -p "corpus/$t"
  # Committed seeds (real requests and files) beside the growing corpus, where a target has them.
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  # -timeout=1: an input that takes over a second is a hang; -rss_limit_mb: bounded memory.
  if cargo $toolchain fuzz run "$t" "corpus/$t" "${seeds[@]}" -- -max_total_time="$seconds" -timeout=1 -rss_limit_mb=1024 \
       -print_final_stats=1 >"$log" 2>&1; then
    result="0 crashes, 0 hangs"
  else
    why=$(grep -m1 -oE "ERROR: libFuzzer: [a-z-]+|panicked at [^ ]+|ALARM: working on the last Unit for [0-9]+ seconds" "$log" || true)
    result="FAILED: ${why:-see the log}; the input is in hub/fuzz/artifacts/$t/"
    this=1
    failed=1
  fi
  execs=$(grep -oP 'stat::number_of_executed_units:\s*\K[0-9]+' "$log" | tail -1 || true)
  rate=$(grep -oP 'stat::average_exec_per_sec:\s*\K[0-9]+' "$log" | tail -1 || true)
  rss=$(grep -oP 'stat::peak_rss_mb:\s*\K[0-9]+' "$log" | tail -1 || true)
  cov=$(grep -oP 'cov: \K[0-9]+' "$log" | tail -1 || true)
  corp=$(grep -oP 'corp: \K[0-9]+' "$log" | tail -1 || true)
  printf '%-14s %12s %10s %8s %8s %9s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${corp:-?}" "${rss:-?}" "$result"
  [ "$this" = 0 ] || grep -A3 -E "ERROR: libFuzzer|panicked at|ALARM" "$log" | head -20
  rm -f "$log"
done
exit "$failed"
