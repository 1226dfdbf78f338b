#!/bin/busybox sh
# /init of the initramfs that cross/board/systemd-test.sh boots. Debian's arm64
# kernel has the virtio disk driver and ext4 as modules, so this loads them,
# mounts the disk whose serial is "root" and hands over to systemd.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

stop() {
    echo "initramfs: $*; powering off"
    poweroff -f
}

for module in $(cat /modules.order); do
    insmod "/modules/$module" || stop "insmod $module failed"
done

# QEMU numbers the virtio-mmio disks in an order of its own, so the root disk
# is found by the serial that the host gave it.
root=
for _ in $(seq 100); do
    for disk in /sys/block/vd*; do
        [ "$(cat "$disk/serial" 2>/dev/null)" = root ] && root=/dev/${disk##*/}
    done
    [ -n "$root" ] && [ -b "$root" ] && break
    sleep 0.1
done
[ -n "$root" ] || stop "no virtio disk with serial 'root'"
mkdir -p /newroot
mount -t ext4 -o rw "$root" /newroot || stop "cannot mount $root"
# /sbin/init is an absolute link, so it is tested as a link here.
[ -L /newroot/sbin/init ] || [ -e /newroot/sbin/init ] || stop "$root has no /sbin/init"
echo "initramfs: $root mounted, starting systemd"
umount /proc /sys /dev
exec switch_root /newroot /sbin/init
