#!/usr/bin/env bash
# Installs what the cross builds and QEMU runs need on Debian 12 (as root):
# Debian's rustc with the arm64 and armhf standard libraries, the GNU cross
# linkers and QEMU user mode. Packages already present are left alone.
set -euo pipefail
packages=(rustc-web cargo-web libstd-rust-web-dev:arm64 libstd-rust-web-dev:armhf
    gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross
    qemu-user qemu-system-arm kmod cpio)
if [ "$(id -u)" -eq 0 ]; then
    dpkg --add-architecture arm64
    dpkg --add-architecture armhf
fi
bash "$(dirname "$0")/apt-install.sh" "${packages[@]}"
# Debian 12's own rustc-web (1.85) is older than throatseg's minimum, and the
# newer one comes from bookworm-security. Without that suite's index apt
# installs the old one without an error, so the version is checked here.
version=$(/usr/bin/rustc --version | sed -n 's/^rustc 1\.\([0-9]*\).*/\1/p')
needed=$(sed -n 's/^rust-version = "1\.\([0-9]*\)".*/\1/p' "$(dirname "$0")/../Cargo.toml")
if [ -n "$version" ] && [ -n "$needed" ] && [ "$version" -lt "$needed" ]; then
    echo "cross/install-deps.sh: Debian's rustc-web is 1.$version, and throatseg needs 1.$needed or later from bookworm-security, which 'apt-get update' did not fetch (see its errors above)" >&2
    exit 1
fi
