#!/usr/bin/env bash
# The agent's budgets (prints figures, fails when over): builds the static musl
# agent-release binaries for aarch64, x86_64 and armv7, then runs the x86_64 one with 20
# services + 20 checks. Usage: bash tests/budget-agent.sh [seconds]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf; do
  cargo build -q --profile agent-release --target "$t" -p rabble-agent
done
cargo build -q --release --bins
exec target/release/agent-budget "${1:-60}"
