#!/usr/bin/env bash
# DNS benchmark (prints figures): dnsperf against the hub and against Unbound, with
# 1,000 services x 3 instances, then again while checks flip. Usage: bash tests/bench-dns.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v dnsperf >/dev/null 2>&1 || need+=(dnsperf)
command -v unbound >/dev/null 2>&1 || [ -x /usr/sbin/unbound ] || need+=(unbound)
command -v dig >/dev/null 2>&1 || need+=(dnsutils)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --bins
exec target/release/dns-bench "${1:-10}"
