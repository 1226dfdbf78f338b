#!/usr/bin/env bash
# The emulated-board camera test. It boots Debian's arm64 kernel in a QEMU virt
# machine whose initramfs contains an aarch64 throatseg build and the bundled
# models. There cross/board/init.sh runs throatseg on vivid's /dev/video0: a
# live recorded run, the replay of that recording, and a run during which the
# camera is unbound from its driver and bound again. The results come back on
# a virtio disk, and cross/board/check.py checks them on the host.
#
#   cross/board/vivid-test.sh BINARY [HOST_BINARY]
#
# BINARY is an aarch64-unknown-linux-gnu build (cross/build.sh). HOST_BINARY,
# a build for this machine, also replays the board's recording so that the
# masks of both architectures can be compared. Environment: BOARD_CPU (QEMU
# CPU model, default cortex-a76), BOARD_CAPTURES (captures per run, default 3),
# THROATSEG_BOARD_CACHE (kernel cache, default target/board), BOARD_WORK
# (work folder, default target/board/run), BOARD_TIMEOUT_S (default 1500).
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: cross/board/vivid-test.sh BINARY [HOST_BINARY]" >&2
    exit 2
fi
binary=$1 host_binary=${2:-}
cpu=${BOARD_CPU:-cortex-a76}
captures=${BOARD_CAPTURES:-3}
cache=${THROATSEG_BOARD_CACHE:-target/board}
work=${BOARD_WORK:-target/board/run}
timeout_s=${BOARD_TIMEOUT_S:-1500}

fail() {
    echo "cross/board/vivid-test.sh: $*" >&2
    exit 1
}

[ -f "$binary" ] || fail "no binary at '$binary'; build one with cross/build.sh aarch64-unknown-linux-gnu"
file -b "$binary" 2>/dev/null | grep 'ARM aarch64' >/dev/null ||
    fail "'$binary' is not an aarch64 executable; build one with cross/build.sh aarch64-unknown-linux-gnu"
[ -z "$host_binary" ] || [ -x "$host_binary" ] || fail "host binary '$host_binary' is not an executable"
command -v qemu-system-aarch64 >/dev/null || fail "qemu-system-aarch64 not found; apt-get install qemu-system-arm (cross/install-deps.sh does this)"
command -v cpio >/dev/null || fail "cpio not found; apt-get install cpio (cross/install-deps.sh does this)"

release=$(bash cross/board/fetch.sh "$cache" | tail -n 1)
root=$cache/root-$release
modules=$root/lib/modules/$release

rm -rf "$work"
mkdir -p "$work/initramfs"
initramfs=$(cd "$work/initramfs" && pwd)
mkdir -p "$initramfs"/{bin,usr/bin,lib/aarch64-linux-gnu,modules,board,proc,sys,dev,out,tmp}
mkdir -p "$initramfs/usr/share/throatseg/models"

cp "$root/bin/busybox" "$initramfs/bin/busybox"
install -m 0755 cross/board/init.sh "$initramfs/init"
cp cross/board/vivid.toml "$initramfs/board/vivid.toml"
echo "$captures" >"$initramfs/board/captures"

# vivid and what it needs, in the order modprobe would load them, then the
# virtio disk the results come back on.
dependencies=$(sed -n 's|^kernel/drivers/media/test-drivers/vivid/vivid.ko: ||p' "$modules/modules.dep")
[ -n "$dependencies" ] || fail "$modules/modules.dep names no vivid.ko; remove $root and run again"
order=()
for module in $dependencies; do
    order=("$module" "${order[@]}")
done
order+=(kernel/drivers/virtio/virtio_mmio.ko kernel/drivers/block/virtio_blk.ko)
: >"$initramfs/modules.order"
for module in "${order[@]}"; do
    cp "$modules/$module" "$initramfs/modules/"
    basename "$module" >>"$initramfs/modules.order"
done
cp "$modules/kernel/drivers/media/test-drivers/vivid/vivid.ko" "$initramfs/modules/"

# The binary, its loader and the libraries it names, from the cross libc.
libc_dir=/usr/aarch64-linux-gnu/lib
[ -d "$libc_dir" ] || fail "$libc_dir not found; apt-get install libc6-arm64-cross (cross/install-deps.sh does this)"
install -m 0755 "$binary" "$initramfs/usr/bin/throatseg"
cp -L "$libc_dir/ld-linux-aarch64.so.1" "$initramfs/lib/"
for library in $(aarch64-linux-gnu-readelf -d "$binary" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
    cp -L "$libc_dir/$library" "$initramfs/lib/aarch64-linux-gnu/" ||
        fail "the binary needs $library, which $libc_dir lacks"
done

# The bundled models, where an installed binary looks for them.
for file in polyp-unet-lite0-aug.onnx polyp-unet-lite0-aug.json embedder-lite0.onnx embedder-lite0.json references-c3.tsrefs; do
    cp models/$file "$initramfs/usr/share/throatseg/models/"
done

# Real images for a `segment` run, so that the board's masks can be compared
# with the host's on images where the model finds something.
data=${THROATSEG_DATA:-../shared/data}
mkdir -p "$initramfs/board/images"
for image in polypgen/C1/images/C1_0003.jpg polypgen/C3/images/C3_0005.jpg throat/images/throat_001.jpg; do
    [ -f "$data/$image" ] || fail "$data/$image not found; set THROATSEG_DATA to the shared data folder"
    cp "$data/$image" "$initramfs/board/images/"
done

(cd "$initramfs" && find . | cpio -o -H newc --quiet) >"$work/initramfs.cpio"
truncate -s 512M "$work/results.img"

echo "cross/board/vivid-test.sh: booting $release on $cpu, $captures captures per run" >&2
started=$(date +%s)
status=0
timeout "$timeout_s" qemu-system-aarch64 -M virt -cpu "$cpu" -smp 2 -m 2048 \
    -nographic -no-reboot -nic none -monitor none -serial "file:$work/console.log" \
    -kernel "$root/boot/vmlinuz-$release" -initrd "$work/initramfs.cpio" \
    -append "console=ttyAMA0 rdinit=/init panic=-1 quiet" \
    -drive "file=$work/results.img,format=raw,if=none,id=results" \
    -device virtio-blk-device,drive=results </dev/null || status=$?
echo "cross/board/vivid-test.sh: the board ran for $(($(date +%s) - started)) s" >&2
[ $status -eq 124 ] && fail "the board did not power off within $timeout_s s; see $work/console.log"
[ $status -eq 0 ] || fail "qemu-system-aarch64 failed with status $status; see $work/console.log"

mkdir -p "$work/results"
tar xf "$work/results.img" -C "$work/results" ||
    fail "no archive found on the result disk: the board did not finish; see $work/console.log"
sed 's/^/board console: /' "$work/console.log" | grep -v '^board console: $' | tail -n 40 >&2 || true

if [ -n "$host_binary" ]; then
    "$host_binary" segment "$initramfs/board/images" --out "$work/results/host-segment" --mode full \
        2>"$work/results/host-segment.log" >/dev/null ||
        fail "the host binary could not segment the board's images; see $work/results/host-segment.log"
    "$host_binary" run --config cross/board/vivid.toml --out "$work/results/host-replay" \
        --source "replay:$work/results/live.tsrec" --json \
        >"$work/results/host-replay.json" 2>"$work/results/host-replay.log" ||
        fail "the host binary could not replay the board's recording; see $work/results/host-replay.log"
fi
python3 cross/board/check.py "$work/results" "$captures"
