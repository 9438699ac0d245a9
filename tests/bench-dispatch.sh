#!/usr/bin/env bash
# A dispatch queue (prints figures): N dispatches (1,000 by default) of a 1-second task
# on 5 agents; the time to drain and the scheduling overhead per task.
# RABBLE_BENCH_MAX_IDLE_MS fails it over a budget. Usage: bash tests/bench-dispatch.sh [n]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --bins
exec target/release/dispatch-bench "${1:-1000}"
