#!/usr/bin/env python3
"""Judges what the emulated board wrote (see cross/board/vivid-test.sh).

    check.py RESULTS CAPTURES

RESULTS is the unpacked result disk: init.sh's exit statuses, the JSON
summaries and logs of the live, replay and unplug runs, and their output
folders. With a host-replay folder beside them, the board's masks are also
compared with the masks the host build made from the same recording.
"""

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from compare_masks import compare, has_foreground  # noqa: E402


class Failures:
    def __init__(self):
        self.messages = []

    def check(self, condition, message):
        if not condition:
            self.messages.append(message)
        return condition


def read_text(path):
    return path.read_text(errors="replace") if path.exists() else ""


def status(results, step):
    text = read_text(results / f"{step}.rc").strip()
    return int(text) if text else None


def summary(results, step):
    text = read_text(results / f"{step}.json").strip()
    try:
        return json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}


def lines(folder):
    path = folder / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def check_run(failures, results, step, captures, expect_reopen):
    """Checks one run's exit status, summary, results lines and masks."""
    code = status(results, step)
    failures.check(code == 0, f"{step}: exit status {code}, expected 0; see {step}.log")
    report = summary(results, step)
    failures.check(report.get("segmented") == captures, f"{step}: {report.get('segmented')} captures segmented, expected {captures}")
    failures.check(report.get("failed") == 0 and report.get("rejected") == 0, f"{step}: rejected or failed captures in {report}")
    failures.check(report.get("source_error") is None, f"{step}: the source ended early: {report.get('source_error')}")
    if expect_reopen:
        failures.check(report.get("reopens", 0) >= 1, f"{step}: the camera was never reopened ({report})")
    else:
        failures.check(report.get("reopens") == 0, f"{step}: {report.get('reopens')} reopens without an unplug")
    entries = lines(results / step)
    failures.check(len(entries) == captures, f"{step}: {len(entries)} lines in results.jsonl, expected {captures}")
    for entry in entries:
        mask_path = results / step / entry.get("mask", "missing")
        if not failures.check(mask_path.exists(), f"{step}: capture {entry.get('capture')} has no mask file ({entry})"):
            continue
        mask = np.asarray(Image.open(mask_path))
        failures.check(mask.shape == (entry["height"], entry["width"]), f"{step}: {mask_path.name} is {mask.shape}, results.jsonl records {entry['width']}x{entry['height']}")
        failures.check((results / step / entry["overlay"]).exists(), f"{step}: {entry['overlay']} is missing")
    return entries, report


def same_files(failures, left, right):
    """Checks that two folders hold the same files, byte for byte, and returns
    how many files are identical."""
    names = sorted(path.name for path in left.iterdir())
    failures.check(names == sorted(path.name for path in right.iterdir()), f"{left.name} and {right.name} hold different files")
    identical = 0
    for name in names:
        other = right / name
        if failures.check(other.exists() and (left / name).read_bytes() == other.read_bytes(), f"{left.name}/{name} and {right.name}/{name} differ"):
            identical += 1
    return identical


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: check.py RESULTS CAPTURES")
    results, captures = Path(sys.argv[1]), int(sys.argv[2])
    failures = Failures()

    live, live_report = check_run(failures, results, "live", captures, expect_reopen=False)
    check_run(failures, results, "replay", captures, expect_reopen=False)
    _, unplug_report = check_run(failures, results, "unplug", captures, expect_reopen=True)
    failures.check(status(results, "unbind") == 0, "the driver could not be unbound from vivid.0")
    failures.check(status(results, "bind") == 0, "the driver could not be bound to vivid.0 again")
    unplug_log = read_text(results / "unplug.log")
    failures.check("reopening the camera failed" in unplug_log, "unplug.log shows no failed reopen while the camera was gone")
    failures.check("camera reopened" in unplug_log, "unplug.log shows no successful reopen")

    identical = 0
    if (results / "live").is_dir() and (results / "replay").is_dir():
        identical = same_files(failures, results / "live", results / "replay")

    code = status(results, "segment")
    failures.check(code == 0, f"segment: exit status {code}, expected 0; see segment.log")
    segmented = lines(results / "segment")
    failures.check(len(segmented) == 3, f"segment: {len(segmented)} lines in results.jsonl, expected 3")

    agreement = {}
    pairs = [("segment", "segment", segmented, "host-segment"), ("replay", "live", live, "host-replay")]
    for name, board_dir, board_lines, host_dir in pairs:
        if not (results / host_dir).is_dir():
            continue
        host_lines = lines(results / host_dir)
        if name == "segment":
            failures.check(has_foreground(host_lines), "the host found no foreground in the real images: the comparison would prove little")
        worst, problems = compare(results / board_dir, board_lines, results / host_dir, host_lines)
        for problem in problems:
            failures.check(False, f"{name}: {problem}")
        agreement[name] = worst

    print(f"live: {live_report.get('frames_processed')} frames, {live_report.get('segmented')} segmented; "
          f"replay: {identical} files byte-identical to the live run; "
          f"unplug: {unplug_report.get('reopens')} reopen(s), {unplug_report.get('timeouts')} timeout(s), "
          f"{unplug_report.get('segmented')} segmented"
          + "".join(f"; board vs host {name}: {share:.4%} of mask pixels agree at worst" for name, share in agreement.items() if share is not None))
    if failures.messages:
        for message in failures.messages:
            print(f"FAIL {message}", file=sys.stderr)
        sys.exit(1)
    print("emulated board: every check passed")


if __name__ == "__main__":
    main()
