#!/usr/bin/env bash
# The lane proxy against Traefik 3 and nginx (prints figures): wrk through each, one
# worker thread each, in front of the same nginx backend; then how fast a new route
# goes live on a lane node. RABBLE_BENCH_MIN_RATIO fails it under that fraction of
# Traefik's throughput. Usage: bash tests/bench-proxy.sh   (needs wrk, nginx, traefik)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --profile agent-release --target x86_64-unknown-linux-musl -p rabble-agent
cargo build -q --release --bins
exec target/release/proxy-bench
