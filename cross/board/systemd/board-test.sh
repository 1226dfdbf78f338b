#!/bin/bash
# /usr/local/sbin/throatseg-board-test, run by throatseg-board-test.service on
# the emulated board of cross/board/systemd-test.sh. It waits for the packaged
# throatseg.service to be active and takes captures with SIGUSR1 and the
# control FIFO. It records the unit's state, journal and results and stops the
# service. Everything goes as a tar archive to the disk whose serial is
# "results", and then the board powers off. It judges nothing:
# cross/board/check_systemd.py does that on the host.
set -u
captures=$(cat /etc/throatseg-board-test/captures)
# Uptime in seconds by which the results must be on their disk: the host
# stops the board soon after.
deadline=$(cat /etc/throatseg-board-test/deadline)
out=/run/throatseg-board-test
results=/var/lib/throatseg/captures/results.jsonl
properties=ActiveState,SubState,Result,MainPID,NRestarts,User,Group,SupplementaryGroups,WatchdogUSec,WatchdogTimestampMonotonic,ActiveEnterTimestampMonotonic,ExecMainStartTimestampMonotonic,ExecMainCode,ExecMainStatus,StatusErrno
mkdir -p "$out"

uptime_s() {
    cut -d ' ' -f 1 /proc/uptime
}

# Succeeds while there is time left before the deadline.
time_left() {
    [ "$(cut -d . -f 1 /proc/uptime)" -lt "$deadline" ]
}

# One line per step in steps.log, with the board's uptime in seconds.
note() {
    echo "$(uptime_s) $*" >>"$out/steps.log"
    echo "board-test: $*"
}

show() {
    systemctl show throatseg.service --property="$properties" >"$out/$1"
}

count_lines() {
    if [ -f "$results" ]; then wc -l <"$results"; else echo 0; fi
}

# Writes the archive and powers off, also when a step above went wrong.
finish() {
    note "writing results"
    disk=
    for block in /sys/block/vd*; do
        [ "$(cat "$block/serial" 2>/dev/null)" = results ] && disk=/dev/${block##*/}
    done
    if [ -n "$disk" ]; then
        journalctl -b -o short-monotonic --no-pager >"$out/journal-boot.txt" 2>&1
        tar cf "$disk" -C "$out" . && sync
        echo "board-test: results written to $disk"
    else
        echo "board-test: no disk with serial 'results'"
    fi
    systemctl --no-block poweroff
}
trap finish EXIT

note "test unit started"
id throatseg >"$out/id.txt" 2>&1
getent group video >"$out/video-group.txt"
uname -r >"$out/kernel.txt"

# 1. The service: throatseg.service is ordered before this unit, so its start
# job has ended. Type=notify makes it active only after READY=1.
state=
while time_left; do
    state=$(systemctl show -P ActiveState throatseg.service)
    [ "$state" = active ] || [ "$state" = failed ] && break
    sleep 1
done
show show-started.txt
note "throatseg.service is $state"
if [ "$state" != active ]; then
    journalctl -u throatseg.service -o cat --no-pager >"$out/journal.txt" 2>&1
    exit 1
fi
pid=$(systemctl show -P MainPID throatseg.service)
# At debug level systemd logs each notification it receives ("Got notification
# message from PID ... (WATCHDOG=1)"), which shows the keep-alives and
# STOPPING=1 in the unit's journal. READY=1 came before this unit started.
systemctl log-level debug
grep -E '^(Name|Uid|Gid|Groups|NoNewPrivs|Seccomp|CapBnd):' "/proc/$pid/status" >"$out/process.txt"
ls -ln /dev/video* >"$out/devices.txt" 2>&1

# 2. Captures: the first ones by SIGUSR1, the last one through the control
# FIFO. The session loop handles one request at a time, so each trigger waits
# for its line in results.jsonl.
while time_left && [ ! -f "$results" ]; do
    sleep 1
done
: >"$out/triggers.txt"
for number in $(seq "$captures"); do
    if [ "$number" -lt "$captures" ] || [ "$captures" -eq 1 ]; then
        trigger=sigusr1
        systemctl kill --kill-who=main --signal=SIGUSR1 throatseg.service
    else
        trigger=fifo
        # Opening a FIFO blocks until a reader has it open, so a service that
        # closed its end must not hang the test.
        timeout 30 sh -c 'echo take >/run/throatseg/control'
    fi
    started=$(uptime_s)
    note "capture $number requested ($trigger)"
    while time_left; do
        [ "$(count_lines)" -ge "$number" ] && break
        [ "$(systemctl show -P ActiveState throatseg.service)" = active ] || break
        sleep 0.5
    done
    lines=$(count_lines)
    echo "$number $trigger $started $(uptime_s) $lines" >>"$out/triggers.txt"
    note "capture $number: results.jsonl has $lines lines"
    [ "$lines" -ge "$number" ] || break
done

# 3. A watchdog keep-alive after READY=1: systemd updates the unit's
# WatchdogTimestamp at each WATCHDOG=1, and throatseg sends one every quarter
# of WatchdogSec while its capture thread makes progress.
ready=$(systemctl show -P ActiveEnterTimestampMonotonic throatseg.service)
watchdog_usec=$(systemctl show -P WatchdogUSec throatseg.service)
while time_left && [ "$watchdog_usec" != 0 ] && [ "$watchdog_usec" != infinity ]; do
    [ "$(systemctl show -P WatchdogTimestampMonotonic throatseg.service)" -gt "$ready" ] && break
    sleep 1
done
show show-running.txt
note "watchdog timeout $watchdog_usec, last keep-alive at $(systemctl show -P WatchdogTimestampMonotonic throatseg.service) us"
cp -a /var/lib/throatseg/captures "$out/captures"
stat -c '%n %U %G %a' /var/lib/throatseg /var/lib/throatseg/captures /var/lib/throatseg/captures/* >"$out/ownership.txt"

# 4. Stop: systemd sends SIGTERM, and the session loop sends STOPPING=1 and
# exits.
note "stopping throatseg.service"
systemctl stop throatseg.service
echo $? >"$out/stop.rc"
note "systemctl stop returned $(cat "$out/stop.rc")"
systemctl log-level info
show show-stopped.txt
journalctl -u throatseg.service -o cat --no-pager >"$out/journal.txt" 2>&1
systemctl list-units --failed --no-legend --plain >"$out/failed-units.txt" 2>&1
note "done"
touch "$out/complete"
