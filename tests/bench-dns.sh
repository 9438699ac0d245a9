#!/usr/bin/env bash
# DNS benchmark (prints figures): dnsperf against the hub and against Unbound, with
# 1,000 services x 3 instances, then again while checks flip. Usage: bash tests/bench-dns.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
for p in dnsperf unbound dig mosquitto; do command -v "$p" >/dev/null 2>&1 || [ -x "/usr/sbin/$p" ] || need=1; done
if [ "${need:-0}" = 1 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsperf unbound dnsutils mosquitto >/dev/null
fi
cargo build --release --bins
exec target/release/dns-bench "${1:-10}"
