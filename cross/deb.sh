#!/usr/bin/env bash
# Builds the Debian package of throatseg for one ARM target from a release
# binary that cross/build.sh made, and prints its path and size.
#
#   cross/deb.sh TARGET [BINARY]
#
# TARGET: aarch64-unknown-linux-gnu (package architecture arm64) or
# armv7-unknown-linux-gnueabihf (armhf).
# BINARY: the release binary; default $THROATSEG_BINARY, else
# ${CARGO_TARGET_DIR:-target}/TARGET/release/throatseg.
#
# Environment:
#   THROATSEG_BOARD       board config installed as /etc/throatseg/throatseg.toml
#                         (a name in boards/; default pi5 on arm64, pi-armhf on armhf)
#   THROATSEG_DEB_OUT     output folder (default target/deb)
#   THROATSEG_DEB_REVISION  Debian revision (default 1)
#   THROATSEG_MAINTAINER  "Name <address>" (default: the author of the last commit)
#
# Needs dpkg-deb and the target's binutils (binutils-aarch64-linux-gnu or
# binutils-arm-linux-gnueabihf, which the cross gcc packages bring).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    echo "cross/deb.sh: $*" >&2
    exit 1
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: cross/deb.sh TARGET [BINARY]" >&2
    exit 2
fi
target=$1
case $target in
    aarch64-unknown-linux-gnu)
        arch=arm64 triple=aarch64-linux-gnu elf_machine=183 default_board=pi5 ;;
    armv7-unknown-linux-gnueabihf)
        arch=armhf triple=arm-linux-gnueabihf elf_machine=40 default_board=pi-armhf ;;
    *)
        fail "unknown target '$target'; use aarch64-unknown-linux-gnu or armv7-unknown-linux-gnueabihf" ;;
esac
binary=${2:-${THROATSEG_BINARY:-${CARGO_TARGET_DIR:-target}/$target/release/throatseg}}
board=${THROATSEG_BOARD:-$default_board}
out_dir=${THROATSEG_DEB_OUT:-target/deb}
revision=${THROATSEG_DEB_REVISION:-1}

# Inputs: the binary must exist and be an ELF file for the target's machine.
[ -f "$binary" ] ||
    fail "binary $binary not found; build it with 'cross/build.sh $target' (set CARGO_TARGET_DIR as for that build) or pass its path as the second argument"
[ "$(head -c 4 "$binary" | od -An -c | tr -d ' ')" = '177ELF' ] ||
    fail "$binary is not an ELF executable; pass the throatseg binary that cross/build.sh $target made"
machine=$(od -An -tu2 -j18 -N2 "$binary" | tr -d ' ')
if [ "$machine" != "$elf_machine" ]; then
    case $machine in
        183) found="an AArch64 binary" ;;
        40) found="a 32-bit ARM binary" ;;
        62) found="an x86-64 binary" ;;
        *) found="a binary for ELF machine $machine" ;;
    esac
    fail "$binary is $found, not one for $target; build it with 'cross/build.sh $target' or pass the binary that build made"
fi
[ -f "boards/$board.toml" ] ||
    fail "THROATSEG_BOARD=$board: boards/$board.toml not found; use one of: $(cd boards && ls -- *.toml | sed 's/\.toml$//' | tr '\n' ' ')"
for tool in dpkg-deb "$triple-strip" "$triple-readelf" "$triple-objdump"; do
    command -v "$tool" >/dev/null || fail "$tool not found; apt-get install dpkg-dev binutils-$triple"
done

version=$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || fail "no version in the [package] section of Cargo.toml"
deb_version=$version-$revision
if [ -n "${THROATSEG_MAINTAINER:-}" ]; then
    maintainer=$THROATSEG_MAINTAINER
else
    maintainer=$(git log -1 --format='%an <%ae>' 2>/dev/null) ||
        fail "not a git checkout; set THROATSEG_MAINTAINER to \"Name <address>\""
fi
# File times and the changelog date come from the last commit, so that two
# builds of one commit give the same package.
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)

# Depends: every shared library the binary links must come from libc6 or
# libgcc-s1; libc6's minimum version is the newest GLIBC_x.y symbol version.
depends=()
for library in $("$triple-readelf" -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    case $library in
        libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1 | ld-linux-*) ;;
        libgcc_s.so.1) depends+=("libgcc-s1") ;;
        *) fail "$binary links $library, which this script does not map to a package; add it to the Depends mapping" ;;
    esac
done
glibc=$("$triple-objdump" -T "$binary" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
[ -n "$glibc" ] || fail "no GLIBC symbol versions in $binary; is it statically linked?"
depends=("libc6 (>= $glibc)" "${depends[@]}" "adduser")
depends_line=$(IFS=,; echo "${depends[*]}" | sed 's/,/, /g')

# The package tree.
stage=$out_dir/stage-$arch
rm -rf "$stage"
umask 022
install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/usr/share/throatseg/models" "$stage/usr/share/throatseg/boards" \
    "$stage/etc/throatseg" "$stage/lib/systemd/system" "$stage/usr/share/doc/throatseg"
"$triple-strip" --strip-all --remove-section=.comment -o "$stage/usr/bin/throatseg" "$binary"
chmod 0755 "$stage/usr/bin/throatseg"
# The files src/models/bundled.rs finds beside the installed binary, and the
# int8 copy of the model that the board configs mention.
for file in polyp-unet-lite0-aug.onnx polyp-unet-lite0-aug.json polyp-unet-lite0-aug-int8.onnx polyp-unet-lite0-aug-int8.json \
    embedder-lite0.onnx embedder-lite0.json references-c3.tsrefs; do
    [ -f "models/$file" ] || fail "models/$file not found; the package ships it (is this a full checkout?)"
    install -m 0644 "models/$file" "$stage/usr/share/throatseg/models/$file"
done
install -m 0644 boards/*.toml "$stage/usr/share/throatseg/boards/"
install -m 0644 "boards/$board.toml" "$stage/etc/throatseg/throatseg.toml"
install -m 0644 boards/throatseg.service "$stage/lib/systemd/system/throatseg.service"
install -m 0644 cross/deb/copyright "$stage/usr/share/doc/throatseg/copyright"
changelog_date=$(date -u -R -d "@$epoch")
cat > "$stage/usr/share/doc/throatseg/changelog.Debian" <<EOF
throatseg ($deb_version) unstable; urgency=medium

  * Package of commit $commit, built by cross/deb.sh for $arch with
    boards/$board.toml as /etc/throatseg/throatseg.toml.

 -- $maintainer  $changelog_date
EOF
gzip -9n "$stage/usr/share/doc/throatseg/changelog.Debian"

install -m 0755 cross/deb/postinst cross/deb/prerm cross/deb/postrm "$stage/DEBIAN/"
echo /etc/throatseg/throatseg.toml > "$stage/DEBIAN/conffiles"
installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<EOF
Package: throatseg
Version: $deb_version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_kb
Depends: $depends_line
Section: science
Priority: optional
Description: pharynx segmentation from a camera, offline, on ARM boards
 throatseg captures frames from a V4L2 camera, normalises their colour to
 reference images of the training domain (DCIN) and segments them with a
 U-Net run by tract, without a network. It runs as the systemd service
 throatseg.service with the settings in /etc/throatseg/throatseg.toml;
 configurations for Raspberry Pi 4 and 5, Jetson Orin Nano and 32-bit
 Raspberry Pi OS are in /usr/share/throatseg/boards.
 .
 The bundled model segments colonoscopy polyps (2 classes); a throat model
 trained with the project's recipe is set in the configuration.
EOF
# systemd-analyze verify checks that ExecStart is executable, so it gets a
# copy of the unit that points at the staged binary.
if command -v systemd-analyze >/dev/null; then
    unit_check=$(mktemp -d)
    sed "s|^ExecStart=/usr/bin/throatseg |ExecStart=$(realpath "$stage")/usr/bin/throatseg |" boards/throatseg.service > "$unit_check/throatseg.service"
    systemd-analyze verify "$unit_check/throatseg.service" ||
        { rm -r "$unit_check"; fail "systemd-analyze verify rejected boards/throatseg.service (messages above)"; }
    rm -r "$unit_check"
else
    echo "cross/deb.sh: systemd-analyze not found, so the unit was not verified (apt-get install systemd)" >&2
fi

(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"
find "$stage" -exec touch -h -d "@$epoch" {} +

deb=$out_dir/throatseg_${deb_version}_$arch.deb
SOURCE_DATE_EPOCH=$epoch dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
printf '%s\t%s bytes\tDepends: %s\n' "$deb" "$(stat -c %s "$deb")" "$depends_line"
