#!/usr/bin/env bash
# The hub cluster on the release hub: replication's cost, fail-over times, memory (BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --bins
exec target/release/cluster-bench
