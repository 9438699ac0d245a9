#!/usr/bin/env bash
# Running work at scale (prints figures): 200 raw_exec allocations on 10 agents (the
# shipped x86_64 musl build). RABBLE_BENCH_MAX_HWM_KB fails it over an agent memory
# budget. Usage: bash tests/bench-jobs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --profile agent-release --target x86_64-unknown-linux-musl -p rabble-agent
cargo build -q --release --bins
exec target/release/job-bench
