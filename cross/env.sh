# Sourced by the cross scripts: sets up cargo to build for one ARM target and
# to run what it builds under QEMU user mode with the CPU model of one board.
#
#   . cross/env.sh TARGET [CPU]
#
# TARGET is aarch64-unknown-linux-gnu or armv7-unknown-linux-gnueabihf; CPU is
# a QEMU CPU model (cortex-a72 for the Pi 4, cortex-a76 for the Pi 5,
# cortex-a76 also for the Jetson Orin Nano, whose Cortex-A78AE QEMU 7.2 does
# not model, cortex-a7 for a 32-bit Pi). The
# compiler is rustup's when it has the target installed, otherwise Debian's
# /usr/bin/rustc with libstd-rust-web-dev for the target's architecture; the
# scripts run cargo as "$CROSS_CARGO".

cross_fail() {
    echo "cross: $*" >&2
    return 1
}

cross_setup() {
    local target=$1 cpu=${2:-}
    local triple debarch qemu tract_kind=""
    case $target in
        aarch64-unknown-linux-gnu)
            triple=aarch64-linux-gnu debarch=arm64 qemu=qemu-aarch64 cpu=${cpu:-cortex-a72} ;;
        armv7-unknown-linux-gnueabihf)
            triple=arm-linux-gnueabihf debarch=armhf qemu=qemu-arm cpu=${cpu:-cortex-a7} ;;
        *)
            cross_fail "unknown target '$target'; use aarch64-unknown-linux-gnu or armv7-unknown-linux-gnueabihf"
            return 1 ;;
    esac

    # The compiler: rustup's target if installed, else Debian's multiarch std.
    # With Debian's rustc, use Debian's cargo of the same release too: a rustup
    # cargo of another release and that rustc do not share the jobserver, and
    # each compiler then runs its code generation on a fraction of a core.
    unset RUSTC RUSTDOC
    CROSS_CARGO=cargo
    if command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -x "$target" >/dev/null; then
        CROSS_RUSTC="rustup ($(rustc --version))"
    elif [ -d "/usr/lib/rustlib/$target/lib" ] && [ -x /usr/bin/rustc ]; then
        export RUSTC=/usr/bin/rustc
        # cargo also runs the doctests of a cross build, with the first rustdoc
        # on PATH unless RUSTDOC is set. rustup's has no std for the target.
        [ -x /usr/bin/rustdoc ] && export RUSTDOC=/usr/bin/rustdoc
        [ -x /usr/bin/cargo ] && CROSS_CARGO=/usr/bin/cargo
        CROSS_RUSTC="Debian ($(/usr/bin/rustc --version))"
        # Debian 12's own rustc-web is too old, and the newer one comes from
        # bookworm-security. apt drops that suite when one of its index files
        # fails to download, and cargo's error would only name crate versions.
        local have needed
        have=$(/usr/bin/rustc --version | sed -n 's/^rustc 1\.\([0-9]*\).*/\1/p')
        needed=$(sed -n 's/^rust-version = "1\.\([0-9]*\)".*/\1/p' Cargo.toml)
        if [ -n "$have" ] && [ -n "$needed" ] && [ "$have" -lt "$needed" ]; then
            cross_fail "Debian's rustc is 1.$have and throatseg needs 1.$needed or later. bookworm-security has rustc-web 1.96: check that 'apt-get update' fetches bookworm-security for amd64, arm64 and armhf, then run cross/install-deps.sh again, or use rustup"
            return 1
        fi
    else
        cross_fail "no Rust standard library for $target. Either 'rustup target add $target', or (Debian) 'dpkg --add-architecture $debarch && apt-get update && apt-get install rustc-web libstd-rust-web-dev:$debarch' (cross/install-deps.sh does this)"
        return 1
    fi
    command -v "$triple-gcc" >/dev/null ||
        { cross_fail "linker $triple-gcc not found; apt-get install gcc-$triple (cross/install-deps.sh does this)"; return 1; }
    command -v "$qemu" >/dev/null ||
        { cross_fail "$qemu not found; apt-get install qemu-user (cross/install-deps.sh does this)"; return 1; }

    local upper
    upper=$(echo "$target" | tr 'a-z-' 'A-Z_')
    # bindgen (the v4l crate's V4L2 bindings) runs clang for the target; the
    # headers of the cross libc serve it without the target's libc6-dev.
    export "BINDGEN_EXTRA_CLANG_ARGS_${target//-/_}=-isystem /usr/$triple/include"
    export "CARGO_TARGET_${upper}_LINKER=$triple-gcc"
    export "CC_${target//-/_}=$triple-gcc"
    export "AR_${target//-/_}=$triple-ar"
    # QEMU must take the dynamic loader and libc from one package. Debian's
    # multiarch libc (libc6:arm64 or libc6:armhf, a dependency of
    # libstd-rust-web-dev) installs the loader at the path the binary names, so
    # no prefix is needed. A prefix of /usr/<triple> pairs the cross package's
    # loader with the multiarch libc, and programs then hang when they start
    # their first thread. The cross package alone is the fallback.
    local loader
    case $debarch in
        arm64) loader=/lib/ld-linux-aarch64.so.1 ;;
        armhf) loader=/lib/ld-linux-armhf.so.3 ;;
    esac
    if [ -e "$loader" ]; then
        unset QEMU_LD_PREFIX
    else
        export QEMU_LD_PREFIX=/usr/$triple
    fi
    export QEMU_CPU=$cpu
    export "CARGO_TARGET_${upper}_RUNNER=$qemu"
    # Integration tests start the throatseg binary themselves; without binfmt_misc
    # the kernel cannot execute an ARM file, so they go through QEMU too.
    export THROATSEG_TEST_RUNNER=$qemu

    # Under QEMU user mode /proc/cpuinfo describes the host, so tell tract which
    # core it runs on. Dot-product support comes from the auxiliary vector, which
    # QEMU fills from the CPU model.
    case $cpu in
        cortex-a53) tract_kind=a53 ;;
        cortex-a55) tract_kind=a55 ;;
        cortex-a72) tract_kind=a72 ;;
        cortex-a76 | cortex-a78ae | neoverse-*) tract_kind=neoverse ;;
    esac
    if [ -n "$tract_kind" ]; then
        export TRACT_CPU_AARCH64_KIND=$tract_kind
    else
        unset TRACT_CPU_AARCH64_KIND
    fi
    if [ "$debarch" = armhf ]; then
        # Every armv7 board throatseg targets has NEON.
        export TRACT_CPU_ARM32_NEON=true
    fi
    CROSS_TARGET=$target CROSS_TRIPLE=$triple CROSS_CPU=$cpu CROSS_QEMU=$qemu
    export CROSS_TARGET CROSS_TRIPLE CROSS_CPU CROSS_QEMU CROSS_RUSTC CROSS_CARGO
}

cross_setup "$@"
