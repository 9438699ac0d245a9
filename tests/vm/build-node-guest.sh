#!/bin/bash
# Builds the NFS volume test's node guest (tests/e2e/nfs.rs) from what tests/vm/build-vm.sh
# downloaded: Debian's arm64 kernel, and a busybox initramfs (no agent yet: the test appends
# a second cpio archive with the agent it built, the kernel reads both) whose /init loads
# virtio-net and the NFSv4 client's modules, brings up user-mode networking's 10.0.2.15 and
# runs /bin/rabble-agent as the node named on the kernel command line
# (`rabble.node=pi1 rabble.hub=10.0.2.2:1883 rabble.key=<the hub's key>`). Lands in $W/node
# (default target/vm/node), reused when present. Usage: tests/vm/build-node-guest.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
W=${W:-$HERE/../../target/vm}
# shellcheck source=tests/vm/guest-lib.sh
. "$HERE/guest-lib.sh"
guest_begin node base.cpio.gz
I=$G/initramfs; mkdir -p "$I"/{bin,dev,proc,sys,run,tmp,etc/rabble/services}
busybox_into "$G" "$I" sh mount insmod ifconfig route sleep cat echo mkdir wc ls grep
modules_into "$G" "$I" virtio_pci virtio_net nfsv4
cat > "$I/init" <<'INIT'
#!/bin/sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mount -t tmpfs run /run; mount -t tmpfs tmp /tmp
for m in $(cat /modlist); do insmod /lib/modules/$m 2>/dev/null; done
ifconfig lo 127.0.0.1 up
i=0; while ! ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
route add default gw 10.0.2.2
for a in $(cat /proc/cmdline); do case $a in
  rabble.node=*) node=${a#rabble.node=};; rabble.hub=*) hub=${a#rabble.hub=};; rabble.key=*) key=${a#rabble.key=};;
esac; done
echo "guest $node up ($(grep -c nfs4 /proc/filesystems) nfs4 in /proc/filesystems); starting the agent"
exec /bin/rabble-agent --name "$node" --hub "mqtt://$hub" --hub-key "$key" --advertise 10.0.2.15 \
  --services-dir /etc/rabble/services --alloc-dir /run/allocs --socket /run/rabble.sock --no-docker \
  --heartbeat-interval 1s
INIT
chmod 755 "$I/init"; (cd "$I" && find . | cpio -o -H newc --quiet | gzip -1) > "$G/base.cpio.gz"
rm -rf "$G/k" "$I"
echo "node guest in $G: vmlinuz, base.cpio.gz (append the agent as bin/rabble-agent)"
