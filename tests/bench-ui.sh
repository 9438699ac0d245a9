#!/usr/bin/env bash
# The web UI's page weight and render times on 100 nodes / 1,000 services / 200
# allocations, on the release hub (BENCHMARKS.md, "The web UI").
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --bins
exec target/release/ui-bench
