# Shell functions shared by the package tests (cross/deb-test.sh and
# cross/board/systemd-test.sh) and cross/board/prepare.sh. Source it from the
# checkout's root after defining fail() and setting cache and mirror.

timings=()
step_started=0

# Starts a timed step: prints its name, and closes the previous step.
step() {
    end_step
    step_name=$1
    step_started=$(date +%s.%N)
    echo "== $step_name" >&2
}

end_step() {
    if [ "$step_started" != 0 ]; then
        timings+=("$(printf '%8.1f s  %s' "$(echo "$(date +%s.%N) - $step_started" | bc)" "$step_name")")
        step_started=0
    fi
}

# Prints the time of every step and the total since STARTED (date +%s.%N).
print_timings() {
    end_step
    printf '%s\n' "${timings[@]}" >&2
    printf '%8.1f s  total\n' "$(echo "$(date +%s.%N) - $1" | bc)" >&2
}

# Installs what an arm64 chroot needs when it is missing (debootstrap,
# qemu-user-static, bc), then registers QEMU with binfmt_misc.
chroot_tools() {
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    [ -e /usr/lib/binfmt.d/qemu-aarch64.conf ] || missing+=(qemu-user-static)
    command -v bc >/dev/null || missing+=(bc)
    if [ ${#missing[@]} -gt 0 ]; then
        bash cross/apt-install.sh "${missing[@]}"
    fi
    register_qemu_aarch64
}

# Registers qemu-user-static's aarch64 interpreter with binfmt_misc, so that
# arm64 programs run in a chroot, and checks the entry.
register_qemu_aarch64() {
    if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc ||
            fail "cannot mount binfmt_misc; in a container, start it with --privileged or register QEMU on the host"
    fi
    if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
        # qemu-user-static's entry has flag F: the kernel opens the
        # interpreter now, so it runs in a chroot that does not contain it.
        cat /usr/lib/binfmt.d/qemu-aarch64.conf >/proc/sys/fs/binfmt_misc/register
    fi
    grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
        fail "the binfmt_misc entry qemu-aarch64 is disabled; echo 1 > /proc/sys/fs/binfmt_misc/qemu-aarch64"
    grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 ||
        fail "the binfmt_misc entry qemu-aarch64 lacks flag F, so it cannot run in a chroot; remove it (echo -1 > /proc/sys/fs/binfmt_misc/qemu-aarch64) and rerun to register qemu-user-static's"
}

# The Debian 12 arm64 root file system both tests start from, built once with
# debootstrap and kept in $cache. systemd-sysv makes systemd /sbin/init, udev
# gives /dev/video0 the video group, kmod loads vivid, and adduser is the
# package's one dependency beyond what minbase installs. Sets rootfs.
board_rootfs() {
    rootfs=$cache/rootfs-bookworm-arm64-systemd
    if [ -f "$rootfs/.throatseg-complete" ]; then
        step "root file system (cached in $rootfs)"
        return
    fi
    step "root file system: debootstrap bookworm arm64 with systemd into $rootfs"
    rm -rf --one-file-system "$rootfs.tmp"
    mkdir -p "$cache"
    debootstrap --variant=minbase --foreign --arch arm64 --include=systemd-sysv,udev,kmod,adduser \
        bookworm "$rootfs.tmp" "$mirror" >/dev/null
    chroot "$rootfs.tmp" /debootstrap/debootstrap --second-stage >/dev/null
    touch "$rootfs.tmp/.throatseg-complete"
    rm -rf "$rootfs"
    mv "$rootfs.tmp" "$rootfs"
}
