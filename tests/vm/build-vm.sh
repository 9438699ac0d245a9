#!/bin/bash
# Builds what the first-boot test boots (from ../shared/recipes/pi-firstboot, verified
# there): Debian's arm64 kernel, a busybox initramfs (virtio, ext4, vfat modules), a real
# systemd Debian root file system made without chroot or emulation (every .deb unpacked,
# no maintainer scripts, then the few things they would do), and a Raspberry-Pi-OS-shaped
# disk (MBR; p1 FAT32 "bootfs" at 8 MiB, 512 MiB, 1 sector per cluster; p2 ext4). No root
# tools (mount, loop devices). Everything lands in $W (default target/vm), reused when
# present: delete it to rebuild. The packages come from the Debian mirror apt uses.
# Usage: tests/vm/build-vm.sh   (W=dir SUITE=bookworm|trixie)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
W=${W:-$HERE/../../target/vm}; SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
mkdir -p "$W"; W=$(cd "$W" && pwd)
# Tests that need the VM may start together (first boot, the qemu driver): one builds, the others wait.
exec 9>"$W.lock"; flock 9
if [ -f "$W/base.img" ] && [ -f "$W/vmlinuz" ] && [ -f "$W/initrd.gz" ]; then echo "reusing $W"; exit 0; fi
# 1) download (and unpack the Essential set) for arm64; nothing is executed
[ -d "$W/dbs/var/cache/apt/archives" ] || debootstrap --foreign --arch=arm64 --variant=minbase \
  --include=systemd-sysv,udev,linux-image-arm64,busybox-static "$SUITE" "$W/dbs" "$MIRROR" > "$W/debootstrap.log"
A=$W/dbs/var/cache/apt/archives
# 2) kernel and modules
# shellcheck source=tests/vm/guest-lib.sh
. "$HERE/guest-lib.sh"
kernel_unpack "$W"
cp "$W/k/boot/vmlinuz-$KVER" "$W/vmlinuz"
# 3) initramfs: busybox + virtio/ext4/vfat modules, mount vda2, switch_root
I=$W/initramfs; rm -rf "$I"; mkdir -p "$I"/{bin,dev,proc,sys,newroot,lib/modules}
busybox_into "$W" "$I" sh mount umount sleep cat cut insmod switch_root
modules_into "$W" "$I" virtio_pci virtio_blk virtio_net ext4 vfat nls_cp437 nls_ascii nls_utf8
cat > "$I/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $(cat /modlist); do insmod /lib/modules/$m; done
INIT=/sbin/init; for a in $(cat /proc/cmdline); do case $a in init=*) INIT=${a#init=};; esac; done
i=0; while [ ! -b /dev/vda2 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
mount -t ext4 -o ro /dev/vda2 /newroot || exec sh
umount /proc /sys; mount --move /dev /newroot/dev
exec switch_root /newroot $INIT
INIT
chmod 755 "$I/init"; (cd "$I" && find . | cpio -o -H newc --quiet | gzip -1) > "$W/initrd.gz"
# 4) root file system: every .deb but the kernel, no maintainer scripts; then what they would do
R=$W/rootfs; rm -rf "$R"; mkdir -p "$R"/usr/{bin,sbin,lib}
ln -s usr/bin "$R/bin"; ln -s usr/sbin "$R/sbin"; ln -s usr/lib "$R/lib"
for d in "$A"/*.deb; do case $(basename "$d") in linux-image-*) continue;; esac
  dpkg-deb --fsys-tarfile "$d" | tar -x --keep-directory-symlink -C "$R"; done
mkdir -p "$R"/{proc,sys,dev,run,tmp,root,boot/firmware,etc/systemd/network} \
  "$R"/etc/systemd/system/{multi-user,sockets,network-online}.target.wants
chmod 1777 "$R/tmp"
cp "$R/usr/share/base-passwd/passwd.master" "$R/etc/passwd"; cp "$R/usr/share/base-passwd/group.master" "$R/etc/group"
awk -F: '{print $1":"($1=="root"?"":"*")":19000:0:99999:7:::"}' "$R/etc/passwd" > "$R/etc/shadow"; chmod 640 "$R/etc/shadow"
: > "$R/etc/machine-id"; echo raspberrypi > "$R/etc/hostname"
printf '/dev/vda2 / ext4 defaults,noatime 0 1\n/dev/vda1 /boot/firmware vfat defaults 0 2\n' > "$R/etc/fstab"
printf '[Match]\nName=en* eth*\n[Network]\nDHCP=yes\n' > "$R/etc/systemd/network/20-wired.network"
ln -sf /lib/systemd/system/systemd-networkd.service "$R/etc/systemd/system/multi-user.target.wants/"
ln -sf /lib/systemd/system/systemd-networkd.socket "$R/etc/systemd/system/sockets.target.wants/"
ln -sf /lib/systemd/system/systemd-networkd-wait-online.service "$R/etc/systemd/system/network-online.target.wants/"
# 5) the Pi-OS-shaped disk
(cd "$W" && ROOT_SECTORS=$((512*2048)) "$HERE/mkimage.sh" base.img "$R" 2>/dev/null)
rm -rf "$R" "$W/k" "$W/bb" "$I"
echo "built $W/base.img (kernel $KVER, $SUITE)"
