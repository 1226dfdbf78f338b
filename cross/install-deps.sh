#!/usr/bin/env bash
# Installs what the cross builds and QEMU runs need on Debian 12 (as root):
# Debian's rustc with the arm64 and armhf standard libraries, the GNU cross
# linkers and QEMU user mode. Packages already present are left alone.
set -euo pipefail
packages=(rustc-web cargo-web libstd-rust-web-dev:arm64 libstd-rust-web-dev:armhf
    gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross
    qemu-user qemu-system-arm kmod cpio)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "cross/install-deps.sh: missing ${missing[*]}; run this script as root" >&2
    exit 1
fi
dpkg --add-architecture arm64
dpkg --add-architecture armhf
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
