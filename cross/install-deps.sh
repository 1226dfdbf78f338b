#!/usr/bin/env bash
# Installs what the cross builds and QEMU runs need on Debian 12 (as root):
# Debian's rustc with the arm64 and armhf standard libraries, the GNU cross
# linkers and QEMU user mode. Packages already present are left alone.
#
# Exits with status 3 when everything but the armhf standard library is
# installed: then aarch64 builds work and armv7 builds do not.
set -euo pipefail
cd "$(dirname "$0")"
packages=(rustc-web cargo-web libstd-rust-web-dev:arm64
    gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross
    qemu-user qemu-system-arm kmod cpio)
if [ "$(id -u)" -eq 0 ]; then
    dpkg --add-architecture arm64
    dpkg --add-architecture armhf
fi
bash apt-install.sh "${packages[@]}"
# Debian 12's own rustc-web (1.85) is older than throatseg's minimum, and the
# newer one comes from bookworm-security. Without that suite's index apt
# installs the old one without an error, so the version is checked here.
version=$(/usr/bin/rustc --version | sed -n 's/^rustc 1\.\([0-9]*\).*/\1/p')
needed=$(sed -n 's/^rust-version = "1\.\([0-9]*\)".*/\1/p' ../Cargo.toml)
if [ -n "$version" ] && [ -n "$needed" ] && [ "$version" -lt "$needed" ]; then
    echo "cross/install-deps.sh: Debian's rustc-web is 1.$version, and throatseg needs 1.$needed or later from bookworm-security, which 'apt-get update' did not fetch (see its errors above)" >&2
    exit 1
fi
# The armhf standard library comes last and on its own: it must have the same
# version as rustc-web, and when the mirror's armhf index of bookworm-security
# fails its checksum, apt offers only Debian 12's older one.
if ! bash apt-install.sh libstd-rust-web-dev:armhf; then
    echo "cross/install-deps.sh: libstd-rust-web-dev:armhf $(dpkg-query -W -f='${Version}' rustc-web) could not be installed, so armv7 builds will fail. The aarch64 toolchain is installed." >&2
    exit 3
fi
