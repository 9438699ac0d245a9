#!/bin/bash
# Builds the Debian root file system the hub-in-a-container tests boot (tests/e2e/hub_ct.rs):
# debootstrap's minbase with systemd as init and D-Bus, the parts of a Proxmox Debian
# "standard" template that `rabble-hub install` meets (systemd, useradd, getent). Native
# (amd64), so debootstrap runs the packages' own scripts. Lands in $W (default
# target/ct-<suite>), reused when present: delete it to rebuild. About 60 s and 60 MB of
# debs from the mirror apt uses.
# Usage: tests/vm/build-ct.sh   (W=dir SUITE=bookworm|trixie)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SUITE=${SUITE:-bookworm}; W=${W:-$HERE/../../target/ct-$SUITE}
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
mkdir -p "$W"; W=$(cd "$W" && pwd)
# Two tests may ask for the same suite at once: one builds, the other waits and reuses.
exec 9> "$W.lock"; flock 9
if [ -f "$W/built" ]; then echo "reusing $W"; exit 0; fi
rm -rf "$W/rootfs"
debootstrap --variant=minbase --include=systemd-sysv,dbus "$SUITE" "$W/rootfs" "$MIRROR" > "$W/debootstrap.log" 2>&1 ||
  { tail -20 "$W/debootstrap.log"; exit 1; }
echo hub-ct > "$W/rootfs/etc/hostname"
# What a Proxmox CT's /etc/hosts starts with (debootstrap writes none).
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$W/rootfs/etc/hosts"
# A fresh machine ID at each boot, as a new CT from a template gets.
: > "$W/rootfs/etc/machine-id"
rm -rf "$W/rootfs/var/cache/apt/archives/"*.deb
touch "$W/built"
echo "built $W/rootfs ($SUITE)"
