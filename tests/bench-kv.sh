#!/usr/bin/env bash
# The KV store and templates on the release hub (prints figures; BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --bins
exec target/release/kv-bench
