#!/usr/bin/env python3
"""Judges what the systemd test's board wrote (see cross/board/systemd-test.sh).

    check_systemd.py RESULTS CAPTURES

RESULTS is the unpacked result disk that cross/board/systemd/board-test.sh
filled: `systemctl show` of throatseg.service after it started, while it ran
and after it stopped, the unit's journal, `id throatseg`, the main process's
credentials, the trigger log, the exit status of `systemctl stop` and a copy
of /var/lib/throatseg/captures. Exits with status 1 and names every failed
check.
"""

import json
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from check import Failures, read_text

SERVICE_USER = "throatseg"


def properties(path):
    """Reads `systemctl show` output (KEY=VALUE lines) into a dict."""
    values = {}
    for line in read_text(path).splitlines():
        key, _, value = line.partition("=")
        values[key] = value
    return values


def as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def parse_id(text):
    """Parses `id` output into (uid, gid, {group name: gid})."""
    uid = re.search(r"uid=(\d+)\(([^)]*)\)", text)
    gid = re.search(r"gid=(\d+)\(([^)]*)\)", text)
    groups = {name: int(number) for number, name in re.findall(r"(\d+)\(([^)]*)\)", text.partition("groups=")[2])}
    return (int(uid.group(1)) if uid else None, int(gid.group(1)) if gid else None, groups)


def check_unit(failures, results):
    """Checks the unit's states: active after its start job, still active
    with no restart and with keep-alives after the captures, then stopped
    cleanly."""
    started = properties(results / "show-started.txt")
    running = properties(results / "show-running.txt")
    stopped = properties(results / "show-stopped.txt")
    failures.check(started.get("ActiveState") == "active" and started.get("SubState") == "running",
                   f"after its start job throatseg.service is {started.get('ActiveState')} ({started.get('SubState')}), "
                   "expected active (running): a Type=notify unit gets there only after READY=1")
    failures.check(as_int(started.get("ActiveEnterTimestampMonotonic")) not in (None, 0),
                   "throatseg.service never entered the active state")
    failures.check(running.get("ActiveState") == "active" and running.get("SubState") == "running",
                   f"after the captures throatseg.service is {running.get('ActiveState')} ({running.get('SubState')}), expected active (running)")
    for name, values in (("started", started), ("running", running), ("stopped", stopped)):
        failures.check(values.get("NRestarts") == "0", f"NRestarts={values.get('NRestarts')} when {name}, expected 0")
    failures.check(started.get("User") == SERVICE_USER, f"the unit runs as User={started.get('User')}, expected {SERVICE_USER}")
    failures.check("video" in running.get("SupplementaryGroups", "").split(),
                   f"SupplementaryGroups={running.get('SupplementaryGroups')}, expected video among them")
    failures.check(as_int(running.get("MainPID")) not in (None, 0), f"MainPID={running.get('MainPID')} while running")
    failures.check(running.get("MainPID") == started.get("MainPID"),
                   f"the main process changed from {started.get('MainPID')} to {running.get('MainPID')} during the captures")
    watchdog = running.get("WatchdogUSec", "")
    failures.check(watchdog not in ("", "0", "infinity"), f"WatchdogUSec={watchdog!r}: the watchdog is off")
    # systemd sets WatchdogTimestamp at READY=1, just before ActiveEnterTimestamp,
    # and again at every WATCHDOG=1.
    keep_alive = as_int(running.get("WatchdogTimestampMonotonic"))
    ready = as_int(running.get("ActiveEnterTimestampMonotonic"))
    failures.check(keep_alive is not None and ready is not None and keep_alive > ready,
                   f"no WATCHDOG=1 reached systemd after READY=1 (last keep-alive {keep_alive} us, active since {ready} us)")

    stop_status = read_text(results / "stop.rc").strip()
    failures.check(stop_status == "0", f"systemctl stop throatseg exited with {stop_status or 'nothing recorded'}, expected 0")
    failures.check(stopped.get("ActiveState") == "inactive" and stopped.get("Result") == "success",
                   f"after the stop throatseg.service is {stopped.get('ActiveState')} with result {stopped.get('Result')}, expected inactive with success")
    failures.check(stopped.get("ExecMainCode") == "1" and stopped.get("ExecMainStatus") == "0",
                   f"the main process ended with code {stopped.get('ExecMainCode')} and status {stopped.get('ExecMainStatus')}, "
                   "expected an exit (code 1) with status 0, not a signal")
    return started, running, stopped


def check_credentials(failures, results):
    """Checks that the main process runs as the service user with the video
    group and the unit's sandbox."""
    uid, gid, groups = parse_id(read_text(results / "id.txt"))
    failures.check(uid is not None and 0 < uid < 1000, f"id throatseg gives uid {uid}, expected a system user")
    failures.check("video" in groups, f"the user throatseg is not in the video group: {read_text(results / 'id.txt').strip()}")
    status = {}
    for line in read_text(results / "process.txt").splitlines():
        key, _, value = line.partition(":")
        status[key] = value.split()
    failures.check(status.get("Uid") == [str(uid)] * 4, f"the main process runs with Uid {status.get('Uid')}, expected {uid} (throatseg) throughout")
    failures.check(status.get("Gid") == [str(gid)] * 4, f"the main process runs with Gid {status.get('Gid')}, expected {gid} (throatseg) throughout")
    video_gid = groups.get("video")
    failures.check(video_gid is not None and str(video_gid) in status.get("Groups", []),
                   f"the main process's groups {status.get('Groups')} lack video ({video_gid})")
    failures.check(status.get("NoNewPrivs") == ["1"], f"NoNewPrivs is {status.get('NoNewPrivs')}, expected 1")
    failures.check(status.get("Seccomp") == ["2"], f"Seccomp is {status.get('Seccomp')}, expected 2 (the unit's system call filter)")
    failures.check(status.get("CapBnd") == ["0000000000000000"], f"CapBnd is {status.get('CapBnd')}, expected no capabilities")
    return uid, groups


def check_captures(failures, results, captures):
    """Checks that each trigger gave one segmented capture with its mask and
    overlay. vivid's test pattern contains no polyp, so every mask must be
    all background."""
    folder = results / "captures"
    path = folder / "results.jsonl"
    entries = []
    if failures.check(path.exists(), "no results.jsonl in /var/lib/throatseg/captures"):
        entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    failures.check(len(entries) >= captures, f"{len(entries)} lines in results.jsonl, expected {captures}")

    triggers = [line.split() for line in read_text(results / "triggers.txt").splitlines() if line.strip()]
    failures.check(len(triggers) == captures, f"{len(triggers)} triggers recorded, expected {captures}")
    for number, (index, trigger, _, _, lines) in enumerate(triggers, start=1):
        failures.check(int(index) == number and int(lines) == number,
                       f"after trigger {index} ({trigger}) results.jsonl had {lines} lines, expected {number}: one capture per trigger")
    seconds = [float(end) - float(begin) for _, _, begin, end, _ in triggers]

    masks = 0
    for entry in entries:
        number = entry.get("capture")
        if not failures.check("mask" in entry and "error" not in entry and "rejected" not in entry,
                              f"capture {number} was not segmented: {entry.get('error') or entry.get('rejected') or entry}"):
            continue
        mask_path = folder / entry["mask"]
        if not failures.check(mask_path.exists(), f"capture {number}: mask {entry['mask']} is missing"):
            continue
        failures.check((folder / entry["overlay"]).exists(), f"capture {number}: overlay {entry['overlay']} is missing")
        mask = np.asarray(Image.open(mask_path))
        failures.check(mask.shape == (entry["height"], entry["width"]) == (360, 640),
                       f"capture {number}: mask is {mask.shape}, results.jsonl records {entry['width']}x{entry['height']}, the camera gives 640x360")
        fractions = entry.get("class_fractions", {})
        background = fractions.get("background")
        foreground = 1.0 - float(np.count_nonzero(mask == 0)) / mask.size
        failures.check(background == 1.0 and foreground == 0.0,
                       f"capture {number}: {foreground:.4%} of the mask is foreground (class_fractions {fractions}); "
                       "vivid's test pattern should be all background")
        failures.check(entry.get("mode") == "full" and len(entry.get("references", [])) == 2,
                       f"capture {number}: mode {entry.get('mode')} with {len(entry.get('references', []))} references, expected full DCIN with two")
        failures.check(entry.get("frame", {}).get("format") == "yuyv", f"capture {number}: frame format {entry.get('frame', {}).get('format')}, expected yuyv from vivid")
        masks += 1
    failures.check(masks >= captures, f"{masks} captures with a mask, expected {captures}")

    owners = {}
    for line in read_text(results / "ownership.txt").splitlines():
        name, user, group, mode = line.rsplit(" ", 3)
        owners[name] = (user, group, mode)
    for entry in entries:
        if "mask" in entry:
            owner = owners.get(f"/var/lib/throatseg/captures/{entry['mask']}")
            failures.check(owner is not None and owner[:2] == (SERVICE_USER, SERVICE_USER),
                           f"{entry['mask']} is owned by {owner}, expected {SERVICE_USER}:{SERVICE_USER}")
    return entries, masks, seconds


def check_journal(failures, results, main_pid, captures):
    """Checks the unit's journal: keep-alives and STOPPING=1 received by
    systemd, no watchdog timeout, failure or restart, and a clean stop with
    the session's summary. Returns the number of keep-alives."""
    journal = read_text(results / "journal.txt")
    # The board test turns on systemd's debug log once the unit is active, so
    # each notification from the main process is logged.
    notifications = re.findall(rf"Got notification message from PID {main_pid} \(([^)]*)\)", journal)
    keep_alives = sum(1 for message in notifications if "WATCHDOG=1" in message)
    failures.check(keep_alives >= 1, "systemd logged no WATCHDOG=1 from the main process")
    failures.check(any("STOPPING=1" in message for message in notifications), "systemd logged no STOPPING=1 from the main process")
    signals = journal.count("Sent signal SIGUSR1 to main process")
    expected = sum(1 for line in read_text(results / "triggers.txt").splitlines() if " sigusr1 " in line)
    failures.check(signals == expected, f"systemd logged {signals} SIGUSR1 deliveries, expected {expected}")
    failures.check("Watchdog timeout" not in journal, "systemd's watchdog fired (\"Watchdog timeout\" in the journal)")
    failures.check("withholding watchdog keep-alives" not in journal, "throatseg withheld watchdog keep-alives (a stalled capture thread)")
    failures.check("Failed with result" not in journal and "Scheduled restart job" not in journal,
                   "the journal shows a failed or restarted service")
    failures.check("sending STOPPING=1 to systemd failed" not in journal, "throatseg could not send STOPPING=1")
    # throatseg prints its summary when the session has ended normally.
    summary = re.search(r"; (\d+) captures: (\d+) segmented, (\d+) rejected, (\d+) failed", journal)
    failures.check(summary is not None and summary.groups() == (str(captures), str(captures), "0", "0"),
                   f"the session's summary in the journal is {summary.group(0) if summary else 'missing'}, expected {captures} captures, all segmented")
    failures.check("'stop-sigterm' timed out" not in journal and "Killing process" not in journal,
                   "systemd had to kill throatseg on stop")
    failures.check("panicked" not in journal, "the journal shows a panic")
    errors = [line for line in journal.splitlines() if re.search(r"Z\s+ERROR\s", line)]
    failures.check(not errors, f"throatseg logged {len(errors)} errors, the first: {errors[:1]}")
    return keep_alives


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check_systemd.py RESULTS CAPTURES")
    results, captures = Path(sys.argv[1]), int(sys.argv[2])
    failures = Failures()
    failures.check((results / "complete").exists(), "the board's test script did not reach its end; see steps.log and journal-boot.txt")

    started, running, stopped = check_unit(failures, results)
    uid, groups = check_credentials(failures, results)
    entries, masks, seconds = check_captures(failures, results, captures)
    keep_alives = check_journal(failures, results, running.get("MainPID"), captures)

    steps = read_text(results / "steps.log").strip()
    if steps:
        print("board steps (uptime in s):\n  " + steps.replace("\n", "\n  "))
    ready_s = (as_int(started.get("ActiveEnterTimestampMonotonic")) or 0) / 1e6
    start_s = (as_int(started.get("ExecMainStartTimestampMonotonic")) or 0) / 1e6
    print(f"throatseg.service: {started.get('ActiveState')} ({started.get('SubState')}) as {started.get('User')} "
          f"(uid {uid}, video gid {groups.get('video')}), READY {ready_s - start_s:.1f} s after its start "
          f"at {start_s:.1f} s of uptime; watchdog {running.get('WatchdogUSec')}, NRestarts {running.get('NRestarts')}; "
          f"{keep_alives} keep-alives logged; {len(entries)} results, {masks} masks, all background; time per capture "
          + ", ".join(f"{value:.1f} s" for value in seconds)
          + f"; systemctl stop exited {read_text(results / 'stop.rc').strip()}, then {stopped.get('ActiveState')} "
          f"({stopped.get('Result')}, exit status {stopped.get('ExecMainStatus')})")
    if failures.messages:
        for message in failures.messages:
            print(f"FAIL {message}", file=sys.stderr)
        sys.exit(1)
    print("systemd on the emulated board: every check passed")


if __name__ == "__main__":
    main()
