#!/usr/bin/env bash
# Installs Debian packages that are missing, as root:
#
#   cross/apt-install.sh PACKAGE...
#
# Packages already installed are left alone. A mirror in the middle of a sync
# can serve an index file that fails its checksum, and apt-get update then
# fails although the packages needed are available. A failed update is
# therefore reported and the install still runs. Update and install are tried
# three times, 20 s apart.
#
# apt-get update keeps none of a suite's new index files when one of them fails,
# so a broken armhf index of bookworm-security also hides that suite's arm64
# packages. The update therefore fetches the indexes of the host's architecture
# and of those named in PACKAGE (as in libstd-rust-web-dev:arm64) only, and
# keeps the indexes of the other architectures that it already has.
set -euo pipefail
missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep "install ok installed" >/dev/null || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
update_options=(-o APT::Get::List-Cleanup=false -o "APT::Architectures::=$(dpkg --print-architecture)")
for package in "${missing[@]}"; do
    case $package in
        *:*) update_options+=(-o "APT::Architectures::=${package##*:}") ;;
    esac
done
if [ "$(id -u)" -ne 0 ]; then
    echo "cross/apt-install.sh: missing ${missing[*]}; run as root to install them" >&2
    exit 1
fi
for attempt in 1 2 3; do
    apt-get update -qq "${update_options[@]}" || echo "cross/apt-install.sh: apt-get update reported errors (attempt $attempt of 3)" >&2
    if DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        exit 0
    fi
    echo "cross/apt-install.sh: installing ${missing[*]} failed (attempt $attempt of 3)" >&2
    [ "$attempt" -lt 3 ] && sleep 20
done
exit 1
