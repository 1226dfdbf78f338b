#!/usr/bin/env bash
# Fetches what the emulated board boots: Debian's arm64 kernel with its
# modules and a static arm64 busybox, unpacked into a cache folder. Packages
# come from the configured Debian mirror with `apt-get download` and are
# unpacked with `dpkg -x`; nothing is installed on the host.
#
#   cross/board/fetch.sh [CACHE]
#
# CACHE defaults to $THROATSEG_BOARD_CACHE, else target/board. Prints the
# kernel release it unpacked. A second run with the files present does nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
cache=${1:-${THROATSEG_BOARD_CACHE:-target/board}}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

fail() {
    echo "cross/board/fetch.sh: $*" >&2
    exit 1
}

# grep reads all of dpkg's lines: with -q it could stop after the first, and
# dpkg's next write would then fail the pipeline with SIGPIPE under pipefail.
if ! dpkg --print-foreign-architectures | grep -x arm64 >/dev/null; then
    fail "dpkg does not know the arm64 architecture; run cross/install-deps.sh as root (it adds it)"
fi
command -v depmod >/dev/null || PATH=$PATH:/usr/sbin:/sbin
command -v depmod >/dev/null || fail "depmod not found; apt-get install kmod"

# The metapackage names the current kernel package of the release.
kernel_package=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9].*-arm64\)\(:arm64\)\?$/\1/p' | head -n 1)
[ -n "$kernel_package" ] || fail "linux-image-arm64:arm64 not found by apt-cache; run 'apt-get update' after cross/install-deps.sh"
release=${kernel_package#linux-image-}

root=$cache/root-$release
if [ ! -e "$root/.complete" ]; then
    rm -rf "$root" "$cache/debs"
    mkdir -p "$cache/debs" "$root"
    (cd "$cache/debs" && apt-get download -q "$kernel_package:arm64" busybox-static:arm64 >/dev/null 2>&1) ||
        fail "could not download $kernel_package:arm64 and busybox-static:arm64 from the Debian mirror"
    for deb in "$cache"/debs/*.deb; do
        dpkg -x "$deb" "$root"
    done
    # The package ships no modules.dep: depmod writes it at install time.
    depmod -b "$root" "$release"
    rm -rf "$cache/debs"
    touch "$root/.complete"
fi
echo "$release"
