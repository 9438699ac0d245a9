#!/usr/bin/env bash
# ACL tokens and HTTPS on the release hub: what a token and a TLS handshake cost (BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release --bins
exec target/release/acl-bench
