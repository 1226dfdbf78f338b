#!/usr/bin/env bash
# The packaged service under real systemd on the emulated board. It installs an
# arm64 throatseg package into a debootstrapped Debian 12 arm64 root file
# system, boots that with Debian's arm64 kernel in a QEMU virt machine, and lets
# systemd start throatseg.service on vivid's /dev/video0. A test unit on the
# board takes captures from the running service with SIGUSR1 and the control
# FIFO, records the unit's state, journal and results, stops the service and
# powers off. cross/board/check_systemd.py then checks the results on the host.
# Prints the time of every step.
#
#   cross/board/systemd-test.sh DEB
#
# Runs as root on a Debian or Ubuntu machine. It installs debootstrap,
# qemu-user-static, qemu-system-arm, cpio and e2fsprogs when they are missing,
# and registers QEMU with binfmt_misc with flag F (as cross/deb-test.sh does),
# so that dpkg runs in the arm64 chroot.
#
# Environment:
#   THROATSEG_BOARD_CACHE  folder for the kernel and the cached root file system
#                          (default target/board)
#   BOARD_WORK             work folder (default THROATSEG_BOARD_CACHE/systemd-run)
#   BOARD_CPU              CPU model QEMU emulates (default cortex-a76, a Raspberry Pi 5)
#   BOARD_CAPTURES         captures the test takes (default 3); the last one is
#                          triggered through the control FIFO, the others by SIGUSR1
#   BOARD_TIMEOUT_S        limit for the board's run (default 1200)
#   THROATSEG_MIRROR       Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
    echo "cross/board/systemd-test.sh: $*" >&2
    exit 1
}

if [ $# -ne 1 ]; then
    echo "usage: cross/board/systemd-test.sh DEB" >&2
    exit 2
fi
deb=$(realpath -- "$1" 2>/dev/null) || fail "package $1 not found; build it with 'cross/deb.sh aarch64-unknown-linux-gnu'"
[ -f "$deb" ] || fail "package $1 not found; build it with 'cross/deb.sh aarch64-unknown-linux-gnu'"
[ "$(id -u)" -eq 0 ] || fail "run as root: debootstrap, chroot, binfmt_misc and the disk image need it"
command -v dpkg-deb >/dev/null || fail "dpkg-deb not found; this script needs a Debian or Ubuntu machine"
package_arch=$(dpkg-deb --field "$deb" Architecture 2>/dev/null) || fail "$deb is not a Debian package (dpkg-deb cannot read it)"
[ "$package_arch" = arm64 ] || fail "$deb is for $package_arch; the emulated board runs arm64 Debian, so pass the aarch64 package"

cache=$(realpath -m -- "${THROATSEG_BOARD_CACHE:-target/board}")
work=$(realpath -m -- "${BOARD_WORK:-$cache/systemd-run}")
cpu=${BOARD_CPU:-cortex-a76}
captures=${BOARD_CAPTURES:-3}
timeout_s=${BOARD_TIMEOUT_S:-1200}
mirror=${THROATSEG_MIRROR:-http://deb.debian.org/debian}
[[ $captures =~ ^[1-9][0-9]*$ ]] || fail "BOARD_CAPTURES=$captures is not a positive number"
[[ $timeout_s =~ ^[0-9]+$ ]] && [ "$timeout_s" -ge 300 ] || fail "BOARD_TIMEOUT_S=$timeout_s: give at least 300 seconds"
root=$work/root
files=cross/board/systemd
. cross/board/lib.sh

in_root() {
    chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
}

unmount_root() {
    if mountpoint -q "$root/proc"; then
        umount "$root/proc" || echo "cross/board/systemd-test.sh: unmounting $root/proc failed" >&2
    fi
}
trap unmount_root EXIT

started=$(date +%s.%N)

step "host tools and binfmt_misc"
missing=()
command -v debootstrap >/dev/null || missing+=(debootstrap)
[ -e /usr/lib/binfmt.d/qemu-aarch64.conf ] || missing+=(qemu-user-static)
command -v qemu-system-aarch64 >/dev/null || missing+=(qemu-system-arm)
command -v cpio >/dev/null || missing+=(cpio)
command -v bc >/dev/null || missing+=(bc)
command -v depmod >/dev/null || [ -x /usr/sbin/depmod ] || [ -x /sbin/depmod ] || missing+=(kmod)
# mkfs.ext4 -d (copy a folder into the new file system) needs e2fsprogs 1.43 or newer.
command -v mkfs.ext4 >/dev/null || [ -x /usr/sbin/mkfs.ext4 ] || [ -x /sbin/mkfs.ext4 ] || missing+=(e2fsprogs)
if [ ${#missing[@]} -gt 0 ]; then
    bash cross/apt-install.sh "${missing[@]}"
fi
PATH=$PATH:/usr/sbin:/sbin
register_qemu_aarch64

step "kernel: Debian's arm64 package (cross/board/fetch.sh)"
release=$(bash cross/board/fetch.sh "$cache" | tail -n 1)
kernel_root=$cache/root-$release
modules=$kernel_root/lib/modules/$release
[ -f "$kernel_root/boot/vmlinuz-$release" ] || fail "$kernel_root/boot/vmlinuz-$release not found; remove $kernel_root and rerun"

board_rootfs

step "fresh copy of the root file system, with the kernel's modules"
unmount_root
mountpoint -q "$root/proc" && fail "$root/proc is still mounted; unmount it and rerun"
rm -rf --one-file-system "$work"
mkdir -p "$work"
cp -a "$rootfs" "$root"
rm "$root/.throatseg-complete"
# /lib is a link to usr/lib in bookworm.
mkdir -p "$root/usr/lib/modules"
cp -a "$modules" "$root/usr/lib/modules/"
depmod -b "$root" "$release"

step "dpkg -i"
mount -t proc proc "$root/proc"
cp "$deb" "$root/tmp/throatseg.deb"
in_root dpkg -i /tmp/throatseg.deb
rm "$root/tmp/throatseg.deb"
unmount_root
# The package's postinst enables the unit with deb-systemd-helper, and the test
# relies on that instead of enabling it.
[ -L "$root/etc/systemd/system/multi-user.target.wants/throatseg.service" ] ||
    fail "the package did not enable throatseg.service for multi-user.target"

step "board configuration: vivid, throatseg.toml, the QEMU drop-in, the test unit"
echo throatseg-board >"$root/etc/hostname"
# Login prompts are masked because the test logs in nowhere and the serial
# console carries its output.
ln -s /dev/null "$root/etc/systemd/system/getty.target"
echo vivid >"$root/etc/modules-load.d/vivid.conf"
install -m 0644 "$files/modprobe-vivid.conf" "$root/etc/modprobe.d/vivid.conf"
install -m 0644 "$files/vivid.toml" "$root/etc/throatseg/throatseg.toml"
install -d "$root/etc/systemd/system/throatseg.service.d"
install -m 0644 "$files/qemu.conf" "$root/etc/systemd/system/throatseg.service.d/qemu.conf"
install -m 0755 "$files/board-test.sh" "$root/usr/local/sbin/throatseg-board-test"
install -d "$root/etc/throatseg-board-test"
echo "$captures" >"$root/etc/throatseg-board-test/captures"
# The board stops waiting a minute before the host's limit, so that a failing
# run still returns its results. The board's uptime counts from its kernel's
# start, a little after the limit starts.
echo $((timeout_s - 60)) >"$root/etc/throatseg-board-test/deadline"
install -m 0644 "$files/throatseg-board-test.service" "$root/etc/systemd/system/throatseg-board-test.service"
ln -s /etc/systemd/system/throatseg-board-test.service "$root/etc/systemd/system/multi-user.target.wants/throatseg-board-test.service"

step "initramfs and disk images"
initramfs=$work/initramfs
mkdir -p "$initramfs"/{bin,modules,proc,sys,dev,newroot}
cp "$kernel_root/bin/busybox" "$initramfs/bin/busybox"
install -m 0755 "$files/initramfs-init.sh" "$initramfs/init"
# The virtio-mmio disk driver, the crc32c that ext4 checksums need (a soft
# dependency, which modules.dep leaves out) and ext4, each after what it needs.
: >"$initramfs/modules.order"
for needed in kernel/drivers/virtio/virtio_mmio.ko kernel/drivers/block/virtio_blk.ko \
    kernel/crypto/crc32c_generic.ko kernel/fs/ext4/ext4.ko; do
    line=$(grep "^$needed:" "$modules/modules.dep") || fail "$modules/modules.dep names no $needed"
    dependencies=${line#*:}
    order=()
    for module in $dependencies; do
        order=("$module" "${order[@]}")
    done
    for module in "${order[@]}" "$needed"; do
        name=$(basename "$module")
        grep -qx "$name" "$initramfs/modules.order" && continue
        cp "$modules/$module" "$initramfs/modules/"
        echo "$name" >>"$initramfs/modules.order"
    done
done
(cd "$initramfs" && find . | cpio -o -H newc --quiet) >"$work/initramfs.cpio"
# The root disk: the installed tree plus room for the journal and the captures.
size_mb=$(($(du -sm "$root" | cut -f1) * 5 / 4 + 256))
mkfs.ext4 -q -F -L throatseg-root -d "$root" "$work/root.img" "${size_mb}M"
rm -rf --one-file-system "$root"
truncate -s 64M "$work/results.img"

step "boot: systemd, throatseg.service, $captures captures, poweroff ($cpu)"
status=0
timeout "$timeout_s" qemu-system-aarch64 -M virt -cpu "$cpu" -smp 2 -m 2048 \
    -nographic -no-reboot -nic none -monitor none -serial "file:$work/console.log" \
    -kernel "$kernel_root/boot/vmlinuz-$release" -initrd "$work/initramfs.cpio" \
    -append "console=ttyAMA0 rdinit=/init panic=-1 quiet systemd.show_status=1" \
    -drive "file=$work/root.img,format=raw,if=none,id=root" \
    -device virtio-blk-device,drive=root,serial=root \
    -drive "file=$work/results.img,format=raw,if=none,id=results" \
    -device virtio-blk-device,drive=results,serial=results \
    -device virtio-rng-device </dev/null || status=$?
[ $status -eq 124 ] && fail "the board did not power off within $timeout_s s; see $work/console.log"
[ $status -eq 0 ] || fail "qemu-system-aarch64 failed with status $status; see $work/console.log"

step "results"
mkdir -p "$work/results"
tar xf "$work/results.img" -C "$work/results" && [ -f "$work/results/steps.log" ] ||
    fail "no archive found on the result disk: the test unit did not finish; see $work/console.log"
grep -a 'board-test:\|initramfs:' "$work/console.log" | sed 's/^/board console: /' >&2 || true
check_status=0
python3 cross/board/check_systemd.py "$work/results" "$captures" || check_status=$?

print_timings "$started"
[ $check_status -eq 0 ] || fail "the checks failed (above); the board's files are in $work/results"
echo "cross/board/systemd-test.sh: $deb passed" >&2
