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
# shellcheck source=tests/vm/guest-lib.sh
. "$HERE/guest-lib.sh"
guest_begin guest initrd.gz
I=$G/initramfs; mkdir -p "$I"/{bin,dev,proc,sys,www,lib/modules}
busybox_into "$G" "$I" sh mount insmod ifconfig route httpd head poweroff sleep cat echo
modules_into "$G" "$I" virtio_pci virtio_net gpio_keys evdev
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
rm -rf "$G/k" "$I"
echo "guest in $G: vmlinuz, initrd.gz, disk.img"
