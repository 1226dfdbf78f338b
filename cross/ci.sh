#!/usr/bin/env bash
# The ARM part of CI, run by .ci/run after the host tests (as root on a fresh
# Debian 12 machine: it installs what it needs).
#
#   cross/ci.sh HOST_BINARY
#
# 1. aarch64, built with the armtest profile, which is release without LTO
#    because the binary and every test binary link tract. It runs the
#    emulated-board camera test (vivid) and the library tests under
#    qemu-aarch64 with each SIMD family forced on the Pi 4 and Pi 5 CPU models.
#    The aarch64 binary is then packaged as a .deb, checked by lintian and
#    installed into a debootstrapped arm64 Debian (cross/deb-test.sh). Last,
#    that Debian boots with the package in the emulated board, where systemd
#    runs the service on vivid (cross/board/systemd-test.sh).
# 2. armv7, also built with the armtest profile: its smoke test under qemu-arm
#    and its .deb. The release profile adds thin LTO, which made this build
#    the longest step of CI; no CI step builds with it. These steps are skipped,
#    with a warning, when apt cannot install the armhf standard library.
# Steps that keep at most one core busy run in the background beside the
# steps that follow them, and their logs are printed when they end. One is the
# debootstrap of the board's root file system, which mostly waits for the
# mirror and for dpkg under QEMU. The others are the two emulated-board tests,
# which run one inference at a time.
# HOST_BINARY is a throatseg built for this machine; the ARM masks are compared
# with its masks.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 1 ]; then
    echo "usage: cross/ci.sh HOST_BINARY" >&2
    exit 2
fi
host_binary=$1
aarch64=aarch64-unknown-linux-gnu
armv7=armv7-unknown-linux-gnueabihf
target_dir=${CARGO_TARGET_DIR:-target}

step() {
    echo "== cross/ci.sh: $* ($(date -u +%H:%M:%S))" >&2
}

logs=$target_dir/ci-logs
mkdir -p "$logs"
declare -A background_pids

# Starts NAME (a command) in the background, its output in $logs/NAME.log.
background() {
    local name=$1
    shift
    step "$name: started in the background, log in $logs/$name.log"
    # setsid gives the step its own process group, so that the trap below
    # stops QEMU and everything else the step started.
    setsid "$@" >"$logs/$name.log" 2>&1 </dev/null &
    background_pids[$name]=$!
}

# Waits for the background step NAME, prints its log and fails if it failed.
wait_for() {
    local name=$1 status=0
    wait "${background_pids[$name]}" || status=$?
    step "$name: ended with status $status"
    sed "s/^/$name: /" "$logs/$name.log" >&2
    unset "background_pids[$name]"
    [ $status -eq 0 ] || { echo "cross/ci.sh: $name failed (status $status)" >&2; exit 1; }
}

# A failed step must not leave a background step running.
stop_background() {
    for pid in "${background_pids[@]}"; do
        kill -- -"$pid" 2>/dev/null || true
    done
}
trap stop_background EXIT

step "installing the cross toolchains and QEMU"
# Status 3: everything but the armhf standard library is installed, because the
# Debian mirror's armhf index failed its checksum. The armv7 steps are then
# skipped, with a warning at the start and at the end of this script's output.
armv7_skipped=""
status=0
bash cross/install-deps.sh || status=$?
case $status in
    0) ;;
    3) armv7_skipped="WARNING: the armv7 build, smoke test and armhf package were skipped: apt could not install libstd-rust-web-dev:armhf (see cross/install-deps.sh above)"
       echo "cross/ci.sh: $armv7_skipped" >&2 ;;
    *) exit "$status" ;;
esac
# The package checks: systemd-analyze verifies the unit, lintian the package.
bash cross/apt-install.sh systemd lintian

# The kernel and the arm64 root file system that the board tests boot.
background board-cache bash cross/board/prepare.sh
step "aarch64 build (armtest profile)"
CROSS_PROFILE=armtest bash cross/build.sh "$aarch64"
wait_for board-cache

background vivid-board bash cross/board/vivid-test.sh "$target_dir/$aarch64/armtest/throatseg" "$host_binary"

for board in cortex-a72 cortex-a76; do
    for simd in scalar neon; do
        step "aarch64 library tests on $board, SIMD $simd"
        bash cross/test.sh "$aarch64" "$board" "$simd" --profile armtest --lib
    done
done
# The integration tests take too long under QEMU for the CI budget: over an
# hour per SIMD family on two cores (docs/deployment.md has the last full run).
# The emulated board and the armv7 smoke test run the binary on real images
# instead.

step "arm64 package: build, lintian, install test"
bash cross/deb.sh "$aarch64" "$target_dir/$aarch64/armtest/throatseg"
# lintian's errors fail the build; its warnings are listed in docs/deployment.md.
lintian --fail-on error target/deb/throatseg_*_arm64.deb
bash cross/deb-test.sh target/deb/throatseg_*_arm64.deb
background systemd-board bash cross/board/systemd-test.sh target/deb/throatseg_*_arm64.deb

if [ -z "$armv7_skipped" ]; then
    step "armv7 build (armtest profile)"
    CROSS_PROFILE=armtest bash cross/build.sh "$armv7"
    step "armv7 smoke test"
    bash cross/smoke.sh "$armv7" "$target_dir/$armv7/armtest/throatseg" "$host_binary"
    step "armhf package"
    bash cross/deb.sh "$armv7" "$target_dir/$armv7/armtest/throatseg"
    lintian --fail-on error target/deb/throatseg_*_armhf.deb
fi
wait_for vivid-board
wait_for systemd-board
[ -z "$armv7_skipped" ] || echo "cross/ci.sh: $armv7_skipped" >&2
step "done"
