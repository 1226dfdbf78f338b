#!/usr/bin/env bash
# Builds the release binary for ARM boards and prints its path and size.
#
#   cross/build.sh [TARGET...]
#
# TARGET: aarch64-unknown-linux-gnu (Raspberry Pi 4/5 with a 64-bit OS, Jetson)
# and/or armv7-unknown-linux-gnueabihf (32-bit Raspberry Pi OS); both when none
# is given. Binaries land in target/TARGET/PROFILE/throatseg, where PROFILE is
# $CROSS_PROFILE: release (the default, what boards run) or armtest (release
# without LTO, which CI uses to build the binary and the tests only once).
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)
profile=${CROSS_PROFILE:-release}
for target in "${targets[@]}"; do
    (
        . cross/env.sh "$target"
        echo "cross/build.sh: $target with $CROSS_RUSTC" >&2
        "$CROSS_CARGO" build --profile "$profile" --locked --target "$target" --bin throatseg
        binary="${CARGO_TARGET_DIR:-target}/$target/$profile/throatseg"
        printf '%s\t%s bytes\n' "$binary" "$(stat -c %s "$binary")"
    )
done
