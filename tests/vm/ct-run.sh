#!/bin/bash
# Boots a Debian root under systemd-nspawn as an unprivileged container, for
# tests/e2e/hub_ct.rs: systemd as PID 1, a user namespace (root inside is an unmapped uid
# outside, as in a Proxmox unprivileged LXC; the tree is chowned into it), its own network
# (loopback only), no registration with machined (the host need not run systemd).
# Usage: tests/vm/ct-run.sh NAME ROOT [systemd-nspawn options]
# The host may run no systemd: nspawn then keeps the container in the cgroup it was started
# in (--keep-unit), so this script first moves itself into a cgroup of its own (NAME), in
# every hierarchy systemd uses here: cgroup v2 alone, or v1's name=systemd with (hybrid)
# or without v2 beside it. nspawn makes the v2 "payload"/"supervisor" children itself but
# expects v1's to exist.
set -euo pipefail
N=$1; R=$2; shift 2
C=/sys/fs/cgroup
if [ -f "$C/cgroup.controllers" ]; then
  mkdir -p "$C/$N" && echo $$ > "$C/$N/cgroup.procs"
else
  for h in unified systemd; do
    [ -d "$C/$h" ] || continue
    mkdir -p "$C/$h/$N/payload" "$C/$h/$N/supervisor"
    echo $$ > "$C/$h/$N/cgroup.procs"
  done
fi
# A private mount namespace: what the container's systemd mounts never reaches the host.
exec unshare --mount --propagation private systemd-nspawn --directory "$R" --machine "$N" --boot \
  --private-users=pick --private-users-ownership=chown --private-network \
  --register=no --keep-unit --console=passive "$@"
