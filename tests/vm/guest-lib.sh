# shellcheck shell=bash disable=SC2012
# Sourced by the VM builders (build-vm.sh, build-qemu-guest.sh, build-node-guest.sh): the
# pieces of an arm64 guest taken from what build-vm.sh downloaded (Debian's packages in
# $A, the apt archive of its debootstrap): the kernel, busybox, modules for an initramfs.

# kernel_unpack <work dir>: Debian's arm64 kernel unpacked in <work dir>/k (modules indexed);
# sets KVER.
kernel_unpack() {
  local K=$1/k
  rm -rf "$K" && mkdir -p "$K" && dpkg-deb -x "$(ls "$A"/linux-image-[0-9]*arm64*.deb | head -1)" "$K"
  [ -d "$K/lib/modules" ] || ln -s usr/lib "$K/lib"
  KVER=$(ls "$K/lib/modules"); /usr/sbin/depmod -b "$K" "$KVER"
}

# busybox_into <work dir> <initramfs> <applet>...: static busybox as <initramfs>/bin/busybox,
# linked as each applet.
busybox_into() {
  local B=$1/bb I=$2; shift 2
  rm -rf "$B" && dpkg-deb -x "$A"/busybox-static_*.deb "$B" && mkdir -p "$I/bin"
  cp "$(ls "$B"/bin/busybox "$B"/usr/bin/busybox 2>/dev/null | head -1)" "$I/bin/"
  for a in "$@"; do ln -sf busybox "$I/bin/$a"; done
  rm -rf "$B"
}

# modules_into <work dir> <initramfs> <module>...: the modules with what they depend on,
# uncompressed in <initramfs>/lib/modules, their names in load order in <initramfs>/modlist.
modules_into() {
  local K=$1/k I=$2; shift 2
  mkdir -p "$I/lib/modules"
  for m in "$@"; do /usr/sbin/modprobe -d "$K" -S "$KVER" --show-depends "$m" 2>/dev/null || true; done |
    awk '$1=="insmod"{print $2}' | awk '!s[$0]++' |
    while read -r p; do b=$(basename "$p"); case $b in
        *.xz) xz -dc "$p" > "$I/lib/modules/${b%.xz}"; echo "${b%.xz}";;
        *.zst) zstd -qdc "$p" > "$I/lib/modules/${b%.zst}"; echo "${b%.zst}";;
        *) cp "$p" "$I/lib/modules/"; echo "$b";; esac; done > "$I/modlist"
}

# guest_begin <name> <file>: G=$W/<name>, built under a lock (tests that need it may start
# together), or the script ends here when G/vmlinuz and G/<file> are there already; then
# what build-vm.sh downloads (A), and the kernel unpacked with G/vmlinuz beside it.
guest_begin() {
  G=$W/$1
  mkdir -p "$W"; exec 8>"$W.$1.lock"; flock 8
  if [ -f "$G/vmlinuz" ] && [ -f "$G/$2" ]; then echo "reusing $G"; exit 0; fi
  [ -d "$W/dbs/var/cache/apt/archives" ] || bash "$HERE/build-vm.sh"
  A=$W/dbs/var/cache/apt/archives
  rm -rf "$G" && mkdir -p "$G"
  kernel_unpack "$G"
  cp "$G/k/boot/vmlinuz-$KVER" "$G/vmlinuz"
}
