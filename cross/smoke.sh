#!/usr/bin/env bash
# Smoke test of an ARM release build under QEMU user mode: the binary starts,
# reads a model, and segments real images (DCIN full mode) into masks that
# agree with the host build's on the same images.
#
#   cross/smoke.sh TARGET BINARY HOST_BINARY [CPU]
#
# e.g. cross/smoke.sh armv7-unknown-linux-gnueabihf \
#          target/armv7-unknown-linux-gnueabihf/release/throatseg target/debug/throatseg
# The images come from $THROATSEG_DATA (default ../shared/data); the work
# folder is $SMOKE_WORK (default target/smoke/TARGET).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 3 ] || [ $# -gt 4 ]; then
    echo "usage: cross/smoke.sh TARGET BINARY HOST_BINARY [CPU]" >&2
    exit 2
fi
target=$1 binary=$2 host_binary=$3 cpu=${4:-}
fail() {
    echo "cross/smoke.sh: $*" >&2
    exit 1
}
[ -f "$binary" ] || fail "no binary at '$binary'; build one with cross/build.sh $target"
[ -x "$host_binary" ] || fail "host binary '$host_binary' is not an executable; build one with cargo build"
. cross/env.sh "$target" $cpu
work=${SMOKE_WORK:-target/smoke/$target}
data=${THROATSEG_DATA:-../shared/data}
rm -rf "$work"
mkdir -p "$work/images"
for image in polypgen/C1/images/C1_0003.jpg polypgen/C3/images/C3_0005.jpg throat/images/throat_001.jpg; do
    [ -f "$data/$image" ] || fail "$data/$image not found; set THROATSEG_DATA to the shared data folder"
    cp "$data/$image" "$work/images/"
done

echo "cross/smoke.sh: $target on $CROSS_CPU ($(file -b "$binary" | cut -d, -f1-2))" >&2
"$CROSS_QEMU" "$binary" --version
"$CROSS_QEMU" "$binary" model info models/polyp-unet-lite0-aug.onnx >"$work/model-info.txt" ||
    fail "model info failed under $CROSS_QEMU"
started=$(date +%s)
"$CROSS_QEMU" "$binary" segment "$work/images" --out "$work/arm" --mode full 2>"$work/arm.log" >/dev/null ||
    fail "segment failed under $CROSS_QEMU; see $work/arm.log"
echo "cross/smoke.sh: three images segmented under $CROSS_QEMU in $(($(date +%s) - started)) s" >&2
"$host_binary" segment "$work/images" --out "$work/host" --mode full 2>"$work/host.log" >/dev/null ||
    fail "segment failed on the host; see $work/host.log"
python3 cross/compare_masks.py "$work/arm" "$work/host"
