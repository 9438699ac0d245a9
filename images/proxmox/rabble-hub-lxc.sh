#!/usr/bin/env bash
# Rabble hub in a Proxmox LXC — paste into the Proxmox VE host's shell (as root):
#
#   RABBLE_HUB_BIN=/root/rabble-hub bash rabble-hub-lxc.sh            # defaults
#   RABBLE_HUB_BIN=/root/rabble-hub bash rabble-hub-lxc.sh --advanced # asks for ID, storage, bridge, IP
#
# Creates an unprivileged Debian container from the newest Debian standard template (1 core,
# 512 MB, 4 GB, DHCP on vmbr0, started on boot, tagged "rabble"), pushes the static rabble-hub
# binary into it and runs `rabble-hub install`, which sets up the user, config, TLS and the
# systemd unit and prints where the hub is. Run again: the existing container (found by its
# "rabble" tag and name, or CTID=) is updated in place — new binary, config and state kept.
# Every default can be set from the environment: CTID, HOSTNAME_CT, CORES, MEMORY, SWAP, DISK,
# STORAGE, TEMPLATE_STORAGE, BRIDGE, IP (dhcp or a CIDR), GW, NESTING (1: the unit gets its
# mount-namespace hardening too), RABBLE_HUB_BIN (the static x86_64 binary, or a URL to it).
set -euo pipefail

HOSTNAME=${HOSTNAME_CT:-rabble-hub}
CORES=${CORES:-1}
MEMORY=${MEMORY:-512}
SWAP=${SWAP:-512}
DISK=${DISK:-4}
STORAGE=${STORAGE:-local-lvm}
TEMPLATE_STORAGE=${TEMPLATE_STORAGE:-local}
BRIDGE=${BRIDGE:-vmbr0}
IP=${IP:-dhcp}
GW=${GW:-}
NESTING=${NESTING:-1}
BIN=${RABBLE_HUB_BIN:-}

say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
die() { printf 'rabble-hub-lxc: %s\n' "$*" >&2; exit 1; }

if ! command -v pct >/dev/null 2>&1 || ! command -v pveam >/dev/null 2>&1; then
  die "run this on a Proxmox VE host (pct and pveam are missing)"
fi
[ -n "$BIN" ] || die "set RABBLE_HUB_BIN to the static rabble-hub binary (x86_64 musl) or a URL to it"

if [ "${1:-}" = "--advanced" ]; then
  ask() { local v; read -r -p "$1 [$2]: " v; printf '%s' "${v:-$2}"; }
  CTID=$(ask "Container ID" "${CTID:-$(pvesh get /cluster/nextid)}")
  HOSTNAME=$(ask "Hostname" "$HOSTNAME")
  STORAGE=$(ask "Root disk storage" "$STORAGE")
  DISK=$(ask "Root disk size (GB)" "$DISK")
  BRIDGE=$(ask "Bridge" "$BRIDGE")
  IP=$(ask "IPv4 (dhcp or CIDR, e.g. 192.168.1.5/24)" "$IP")
  if [ "$IP" != dhcp ]; then GW=$(ask "Gateway" "$GW"); fi
fi

# The binary: a local file, or downloaded once.
if [[ "$BIN" =~ ^https?:// ]]; then
  say "downloading $BIN"
  TMP_BIN=$(mktemp); trap 'rm -f "$TMP_BIN"' EXIT
  curl -fsSL "$BIN" -o "$TMP_BIN"
  BIN=$TMP_BIN
fi
[ -f "$BIN" ] || die "$BIN: no such file"

# An existing Rabble container: CTID= given, or the one tagged rabble with our hostname.
if [ -z "${CTID:-}" ]; then
  CTID=$(pct list | awk -v h="$HOSTNAME" 'NR > 1 && $NF == h { print $1; exit }')
  if [ -n "$CTID" ] && ! pct config "$CTID" | grep -q '^tags:.*rabble'; then CTID=""; fi
fi

if [ -n "${CTID:-}" ] && pct status "$CTID" >/dev/null 2>&1; then
  say "updating the hub in container $CTID"
  pct status "$CTID" | grep -q running || pct start "$CTID"
else
  CTID=${CTID:-$(pvesh get /cluster/nextid)}
  say "finding the newest Debian standard template"
  pveam update >/dev/null
  TEMPLATE=$(pveam available --section system | awk '$2 ~ /^debian-1[2-9]-standard_/ { print $2 }' | sort -V | tail -1)
  [ -n "$TEMPLATE" ] || die "no debian-12/13 standard template in 'pveam available'"
  if ! pveam list "$TEMPLATE_STORAGE" | grep -q "$TEMPLATE"; then
    say "downloading $TEMPLATE to $TEMPLATE_STORAGE"
    pveam download "$TEMPLATE_STORAGE" "$TEMPLATE" >/dev/null
  fi
  NET="name=eth0,bridge=$BRIDGE,ip=$IP"
  if [ -n "$GW" ]; then NET="$NET,gw=$GW"; fi
  say "creating container $CTID ($HOSTNAME: $CORES core, $MEMORY MB, $DISK GB on $STORAGE, $NET)"
  pct create "$CTID" "$TEMPLATE_STORAGE:vztmpl/$TEMPLATE" --hostname "$HOSTNAME" --unprivileged 1 \
    --features "nesting=$NESTING" --cores "$CORES" --memory "$MEMORY" --swap "$SWAP" \
    --rootfs "$STORAGE:$DISK" --net0 "$NET" --onboot 1 --tags rabble --ostype debian >/dev/null
  pct start "$CTID"
fi

say "waiting for the container's network"
for _ in $(seq 1 60); do
  if pct exec "$CTID" -- sh -c 'ip -4 -o addr show scope global | grep -q inet'; then break; fi
  sleep 1
done

say "installing rabble-hub"
pct push "$CTID" "$BIN" /usr/local/bin/rabble-hub.new --perms 0755
pct exec "$CTID" -- /usr/local/bin/rabble-hub.new install --name "$HOSTNAME"
pct exec "$CTID" -- rm -f /usr/local/bin/rabble-hub.new
say "the hub runs in container $CTID; re-run this script to update it"
