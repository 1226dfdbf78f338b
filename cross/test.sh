#!/usr/bin/env bash
# Runs the test suite of an ARM build under QEMU user mode, with the CPU model
# of a board and one SIMD kernel family forced.
#
#   cross/test.sh TARGET CPU SIMD [CARGO TEST ARGUMENTS...]
#
# e.g. cross/test.sh aarch64-unknown-linux-gnu cortex-a76 neon --lib
# CPU is a QEMU model (cortex-a72: Pi 4, cortex-a76: Pi 5, cortex-a78ae: Jetson
# Orin, cortex-a7: 32-bit Pi); SIMD is scalar or neon (or auto). The shared data
# is read from ../shared/data unless THROATSEG_DATA is set, as on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 3 ]; then
    echo "usage: cross/test.sh TARGET CPU SIMD [CARGO TEST ARGUMENTS...]" >&2
    exit 2
fi
target=$1 cpu=$2 simd=$3
shift 3
. cross/env.sh "$target" "$cpu"
export THROATSEG_SIMD=$simd
echo "cross/test.sh: $target on $cpu, SIMD $simd, $CROSS_RUSTC" >&2
"$CROSS_CARGO" test --locked --target "$target" "$@"
