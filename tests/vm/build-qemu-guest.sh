#!/bin/bash
# Builds the qemu driver test's guest (tests/e2e/drivers.rs) from what tests/vm/build-vm.sh
# downloaded: Debian's arm64 kernel, and an initramfs whose /init (busybox) loads the
# virtio-net and power-button modules, brings up user-mode networking's 10.0.2.15, serves
# HTTP on port 80 (busybox httpd), and powers off on the first input event (the ACPI/GPIO
# power button QEMU's `system_powerdown` presses). Lands in $W/guest (default
# target/vm/guest), reused when present. Usage: tests/vm/build-qemu-guest.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
W=${W:-$HERE/../../target/vm}
G=$W/guest
mkdir -p "$W"; exec 8>"$W.guest.lock"; flock 8
if [ -f "$G/vmlinuz" ] && [ -f "$G/initrd.gz" ]; then echo "reusing $G"; exit 0; fi
[ -d "$W/dbs/var/cache/apt/archives" ] || bash "$HERE/build-vm.sh"
A=$W/dbs/var/cache/apt/archives
rm -rf "$G" && mkdir -p "$G/k" "$G/bb"
dpkg-deb -x "$(ls "$A"/linux-image-[0-9]*arm64*.deb | head -1)" "$G/k"
[ -d "$G/k/lib/modules" ] || ln -s usr/lib "$G/k/lib"
KVER=$(ls "$G/k/lib/modules"); /usr/sbin/depmod -b "$G/k" "$KVER"
cp "$G/k/boot/vmlinuz-$KVER" "$G/vmlinuz"
dpkg-deb -x "$A"/busybox-static_*.deb "$G/bb"
I=$G/initramfs; mkdir -p "$I"/{bin,dev,proc,sys,www,lib/modules}
cp "$(ls "$G"/bb/bin/busybox "$G"/bb/usr/bin/busybox 2>/dev/null | head -1)" "$I/bin/"
for a in sh mount insmod ifconfig route httpd head poweroff sleep cat echo; do ln -sf busybox "$I/bin/$a"; done
for m in virtio_pci virtio_net gpio_keys evdev; do
  /usr/sbin/modprobe -d "$G/k" -S "$KVER" --show-depends $m 2>/dev/null || true; done |
  awk '$1=="insmod"{print $2}' | awk '!s[$0]++' |
  while read -r p; do b=$(basename "$p"); case $b in
      *.xz) xz -dc "$p" > "$I/lib/modules/${b%.xz}"; echo "${b%.xz}";;
      *.zst) zstd -qdc "$p" > "$I/lib/modules/${b%.zst}"; echo "${b%.zst}";;
      *) cp "$p" "$I/lib/modules/"; echo "$b";; esac; done > "$I/modlist"
echo "rabble qemu guest" > "$I/www/index.html"
cat > "$I/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /modlist); do insmod /lib/modules/$m 2>/dev/null; done
ifconfig lo 127.0.0.1 up
i=0; while ! ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
route add default gw 10.0.2.2
# The power button (system_powerdown): an event on it powers the guest off. Its device can
# appear after init gets here (the module's probe is deferred): wait for it, and serve only
# once the watcher is listening (a press before it opens the device would be lost).
i=0; while [ ! -e /dev/input/event0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
(head -c 1 /dev/input/event0 >/dev/null; echo "power button: off"; poweroff -f) &
sleep 0.3
echo "guest up; serving http on :80"
exec httpd -f -p 80 -h /www
INIT
chmod 755 "$I/init"; (cd "$I" && find . | cpio -o -H newc --quiet | gzip -1) > "$G/initrd.gz"
truncate -s 1M "$G/disk.img"
rm -rf "$G/k" "$G/bb" "$I"
echo "guest in $G: vmlinuz, initrd.gz, disk.img"
