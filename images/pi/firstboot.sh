#!/bin/sh
# Rabble's first-boot installer, put on a Raspberry Pi card's boot partition by
# `rabble image`. It runs once, as root, through the `systemd.run=` hook `rabble image`
# added to cmdline.txt (the way Raspberry Pi Imager runs its firstrun.sh): it installs the
# agent, its config, CA, token and service files into the root file system, enables the
# agent's unit, removes Rabble's folder (the token must not stay on the FAT partition)
# and exactly the cmdline tokens Rabble added, and exits so systemd reboots.
# Works with dash, bash and busybox sh; logs to the console and /var/log/rabble-firstboot.log.
set -u
SRC=$(cd "$(dirname "$0")" && pwd)
FW=$(dirname "$SRC")
LOG=/var/log/rabble-firstboot.log

log() {
  echo "rabble firstboot: $*"
  echo "$(date -u +%FT%TZ) $*" >> "$LOG" 2>/dev/null || true
}

# Removes the cmdline tokens listed in cmdline.added, and any systemd.run= of ours. Plain
# sh, grep and tr only (a minimal root file system may have no awk).
unhook() {
  added="$SRC/cmdline.added"
  line=$(tr -d '\r' < "$FW/cmdline.txt")
  out=""
  set -f
  for t in $line; do
    case "$t" in systemd.run=*/rabble/firstboot.sh) continue ;; esac
    if [ -f "$added" ] && grep -qxF -e "$t" "$added"; then continue; fi
    out="${out:+$out }$t"
  done
  set +f
  printf '%s\n' "$out" > "$FW/cmdline.txt"
}

install_agent() {
  case "$(uname -m)" in
    aarch64 | arm64) arch=aarch64 ;;
    arm*) arch=arm ;;
    *) arch=$(uname -m) ;;
  esac
  bin="$SRC/rabble-agent.$arch"
  # A 64-bit kernel under a 32-bit userland (armhf Pi OS on a Pi 4) runs either build.
  if [ ! -f "$bin" ] && [ "$arch" = aarch64 ] && [ -f "$SRC/rabble-agent.arm" ]; then
    bin="$SRC/rabble-agent.arm"
  fi
  if [ ! -f "$bin" ]; then
    log "no agent for $(uname -m) on the card (rabble-agent.$arch)"
    return 1
  fi
  install -D -m 0755 "$bin" /usr/local/bin/rabble-agent || return 1
  install -d -m 0755 /etc/rabble /etc/rabble/services.d || return 1
  install -m 0644 "$SRC/agent.toml" /etc/rabble/agent.toml || return 1
  if [ -f "$SRC/ca.pem" ]; then install -m 0644 "$SRC/ca.pem" /etc/rabble/ca.pem || return 1; fi
  # Root-only; systemd hands the agent a copy (LoadCredential in the unit's drop-in).
  if [ -f "$SRC/token" ]; then (umask 077 && install -m 0600 "$SRC/token" /etc/rabble/token) || return 1; fi
  if [ -f "$SRC/join-token" ]; then (umask 077 && install -m 0600 "$SRC/join-token" /etc/rabble/join-token) || return 1; fi
  for f in "$SRC"/services/*; do
    [ -f "$f" ] && { install -m 0644 "$f" /etc/rabble/services.d/ || return 1; }
  done
  install -m 0644 "$SRC/rabble-agent.service" /etc/systemd/system/rabble-agent.service || return 1
  for f in "$SRC"/rabble-agent.service.d/*.conf; do
    [ -f "$f" ] && { install -D -m 0644 "$f" "/etc/systemd/system/rabble-agent.service.d/$(basename "$f")" || return 1; }
  done
  if getent group docker > /dev/null 2>&1; then
    printf '[Service]\nSupplementaryGroups=docker\n' > /etc/systemd/system/rabble-agent.service.d/20-docker.conf
  fi
  mkdir -p /etc/systemd/system/multi-user.target.wants
  ln -sf /etc/systemd/system/rabble-agent.service /etc/systemd/system/multi-user.target.wants/rabble-agent.service
  log "installed $(basename "$bin") as /usr/local/bin/rabble-agent ($(wc -c < "$bin") bytes), enabled rabble-agent.service"
}

install_agent || log "failed: the agent is not installed"
unhook
rm -rf "$SRC"
sync
log "cmdline.txt now: $(cat "$FW/cmdline.txt")"
# Exit 0 even on failure, so systemd reboots into a normal system whose log says why.
exit 0
