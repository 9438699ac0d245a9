#!/usr/bin/env bash
# Scheduler benchmark (prints figures): 10,000 placements on 5,000 simulated nodes, pure
# and through the catalog writer (redb commits). RABBLE_BENCH_MIN_PLACEMENTS fails it
# under a floor (placements/s). Usage: bash tests/bench-sched.sh [nodes] [allocations]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --bins
exec target/release/sched-bench "${1:-5000}" "${2:-10000}"
