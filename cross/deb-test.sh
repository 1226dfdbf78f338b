#!/usr/bin/env bash
# Installs an arm64 throatseg package into a minimal Debian 12 arm64 root file
# system with systemd (the one cross/board/systemd-test.sh boots) under QEMU
# user mode, checks what it installed, segments a real image
# as the service user, and purges the package again. Prints the time of
# every step.
#
#   cross/deb-test.sh DEB
#
# Runs as root on an x86_64 (or any) Debian or Ubuntu machine. It installs
# debootstrap and qemu-user-static when they are missing. It registers QEMU
# with binfmt_misc with flag F, so that the interpreter works inside the chroot.
#
# Environment:
#   THROATSEG_BOARD_CACHE  folder for the cached root file system (default target/board)
#   THROATSEG_DATA         shared data folder (default ../shared/data beside the checkout)
#   THROATSEG_MIRROR       Debian mirror (default http://deb.debian.org/debian)
#   QEMU_CPU               CPU model QEMU emulates (default cortex-a76, a Raspberry Pi 5)
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "cross/deb-test.sh: $*" >&2
    exit 1
}

if [ $# -ne 1 ]; then
    echo "usage: cross/deb-test.sh DEB" >&2
    exit 2
fi
deb=$(realpath -- "$1" 2>/dev/null) || fail "package $1 not found; build it with 'cross/deb.sh aarch64-unknown-linux-gnu'"
[ -f "$deb" ] || fail "package $1 not found; build it with 'cross/deb.sh aarch64-unknown-linux-gnu'"
[ "$(id -u)" -eq 0 ] || fail "run as root: debootstrap, chroot and binfmt_misc need it"
command -v dpkg-deb >/dev/null || fail "dpkg-deb not found; this script needs a Debian or Ubuntu machine"
package_arch=$(dpkg-deb --field "$deb" Architecture 2>/dev/null) || fail "$deb is not a Debian package (dpkg-deb cannot read it)"
[ "$package_arch" = arm64 ] || fail "$deb is for $package_arch; this test boots arm64 Debian, so pass the aarch64 package"

cache=$(realpath -m -- "${THROATSEG_BOARD_CACHE:-target/board}")
data=${THROATSEG_DATA:-../shared/data}
image=$data/polypgen/C1/images/C1_0001.jpg
[ -f "$image" ] || fail "test image $image not found; set THROATSEG_DATA to the folder holding polypgen/"
mirror=${THROATSEG_MIRROR:-http://deb.debian.org/debian}
export QEMU_CPU=${QEMU_CPU:-cortex-a76}
# Under QEMU user mode /proc/cpuinfo describes the host, so tract gets the
# core type from TRACT_CPU_AARCH64_KIND, as in cross/env.sh.
case $QEMU_CPU in
    cortex-a53) tract_kind=a53 ;;
    cortex-a55) tract_kind=a55 ;;
    cortex-a72) tract_kind=a72 ;;
    *) tract_kind=neoverse ;;
esac

work=$cache/run-arm64
. cross/board/lib.sh

check() {
    local description=$1
    shift
    "$@" || fail "check failed: $description"
    echo "   ok: $description" >&2
}

in_root() {
    chroot "$work" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        QEMU_CPU="$QEMU_CPU" TRACT_CPU_AARCH64_KIND="$tract_kind" "$@"
}

unmount_work() {
    for mount in "$work/proc"; do
        if mountpoint -q "$mount"; then
            umount "$mount" || echo "cross/deb-test.sh: unmounting $mount failed" >&2
        fi
    done
}
trap unmount_work EXIT

started=$(date +%s.%N)

step "host tools and binfmt_misc"
chroot_tools
board_rootfs

step "fresh copy of the root file system"
unmount_work
mountpoint -q "$work/proc" && fail "$work/proc is still mounted; unmount it and rerun"
rm -rf --one-file-system "$work"
cp -a "$rootfs" "$work"
mount -t proc proc "$work/proc"
mkdir -p "$work/tmp/throatseg-test"
cp "$deb" "$work/tmp/throatseg-test/throatseg.deb"
cp "$image" "$work/tmp/throatseg-test/input.jpg"

step "dpkg -i"
in_root dpkg -i /tmp/throatseg-test/throatseg.deb

step "installed files, user and conffile"
check "service user is a system user" in_root sh -c 'uid=$(id -u throatseg) && [ "$uid" -lt 1000 ]'
check "service group exists" in_root sh -c 'getent group throatseg >/dev/null'
check "service user is in the video group" in_root sh -c 'id -nG throatseg | tr " " "\n" | grep -qx video'
for file in /usr/bin/throatseg /lib/systemd/system/throatseg.service /etc/throatseg/throatseg.toml \
    /usr/share/throatseg/models/polyp-unet-lite0-aug.onnx /usr/share/throatseg/models/polyp-unet-lite0-aug.json \
    /usr/share/throatseg/models/polyp-unet-lite0-aug-int8.onnx /usr/share/throatseg/models/embedder-lite0.onnx \
    /usr/share/throatseg/models/references-c3.tsrefs /usr/share/throatseg/boards/pi5.toml \
    /usr/share/doc/throatseg/copyright /usr/share/doc/throatseg/changelog.Debian.gz; do
    check "$file installed" test -f "$work$file"
done
check "conffile registered" in_root sh -c "dpkg-query -W -f='\${Conffiles}' throatseg | grep -q '^ /etc/throatseg/throatseg.toml '"
check "md5sums match the installed files" in_root dpkg --verify throatseg
check "unit enabled for multi-user.target" test -L "$work/etc/systemd/system/multi-user.target.wants/throatseg.service"
check "binary runs" in_root /usr/bin/throatseg --version

step "throatseg segment as the service user (QEMU $QEMU_CPU)"
in_root install -d -o throatseg -g throatseg /tmp/throatseg-test/out
in_root setpriv --reuid=throatseg --regid=throatseg --init-groups \
    /usr/bin/throatseg segment /tmp/throatseg-test/input.jpg --out /tmp/throatseg-test/out
out=$work/tmp/throatseg-test/out
check "mask written" test -f "$out/input.mask.png"
check "overlay written" test -f "$out/input.overlay.png"
check "outputs owned by the service user" in_root sh -c '[ "$(stat -c %U /tmp/throatseg-test/out/input.mask.png)" = throatseg ]'
check "mask is a PNG of the input's size" python3 - "$out/input.mask.png" "$out/results.jsonl" <<'EOF'
import json, struct, sys
mask = open(sys.argv[1], "rb").read(24)
line = json.loads(open(sys.argv[2]).readline())
assert mask[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
width, height = struct.unpack(">II", mask[16:24])
assert (width, height) == (line["width"], line["height"]), f"mask {width}x{height}, input {line['width']}x{line['height']}"
print(f"   mask {width}x{height}, class fractions {line['class_fractions']}, references {[r['name'] for r in line['references']]}", file=sys.stderr)
EOF

step "dpkg --purge"
in_root dpkg --purge throatseg
check "service user removed" in_root sh -c '! getent passwd throatseg'
check "service group removed" in_root sh -c '! getent group throatseg'
check "conffile removed" test ! -e "$work/etc/throatseg/throatseg.toml"
check "binary removed" test ! -e "$work/usr/bin/throatseg"

unmount_work
print_timings "$started"
echo "cross/deb-test.sh: $deb passed" >&2
