#!/usr/bin/env bash
# Fills the board cache that cross/deb-test.sh and cross/board/systemd-test.sh
# start from: Debian's arm64 kernel (cross/board/fetch.sh) and the debootstrapped
# Debian 12 arm64 root file system with systemd. Both tests do this themselves
# when the cache is empty; CI runs it beside the aarch64 build, because
# debootstrap mostly waits for the mirror and for dpkg under QEMU user mode.
#
#   cross/board/prepare.sh      # as root
#
# Environment: THROATSEG_BOARD_CACHE (default target/board) and
# THROATSEG_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
    echo "cross/board/prepare.sh: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || fail "run as root: debootstrap, chroot and binfmt_misc need it"
cache=$(realpath -m -- "${THROATSEG_BOARD_CACHE:-target/board}")
mirror=${THROATSEG_MIRROR:-http://deb.debian.org/debian}
. cross/board/lib.sh
started=$(date +%s.%N)

step "host tools and binfmt_misc"
chroot_tools

step "kernel: Debian's arm64 package (cross/board/fetch.sh)"
bash cross/board/fetch.sh "$cache" >/dev/null

board_rootfs
print_timings "$started"
