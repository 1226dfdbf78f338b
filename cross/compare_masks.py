#!/usr/bin/env python3
"""Compares the masks of two throatseg output folders, results line by line.

    compare_masks.py ARM_DIR HOST_DIR [MIN_AGREEMENT]

Both folders hold a results.jsonl with one line per image or capture, in the
same order. Every pair of masks must have the same size and agree on at least
MIN_AGREEMENT of their pixels. The default is 0.995 because the ARM and x86
kernels round differently, which may move a border pixel. The host must also
have found foreground somewhere, because agreement on empty masks proves
little. Prints the worst share.
"""

import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

MIN_AGREEMENT = 0.995


def results_lines(folder):
    path = Path(folder) / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def compare(arm_dir, arm_lines, host_dir, host_lines, min_agreement=MIN_AGREEMENT):
    """Returns (worst share of agreeing pixels or None, list of failures)."""
    failures = []
    if len(arm_lines) != len(host_lines):
        failures.append(f"{len(arm_lines)} results on ARM, {len(host_lines)} on the host")
    shares = []
    for arm_line, host_line in zip(arm_lines, host_lines):
        if "mask" not in arm_line or "mask" not in host_line:
            failures.append(f"a line without a mask: ARM {arm_line}, host {host_line}")
            continue
        arm_mask = np.asarray(Image.open(Path(arm_dir) / arm_line["mask"]))
        host_mask = np.asarray(Image.open(Path(host_dir) / host_line["mask"]))
        if arm_mask.shape != host_mask.shape:
            failures.append(f"{host_line['mask']}: {arm_mask.shape} on ARM, {host_mask.shape} on the host")
            continue
        shares.append(float((arm_mask == host_mask).mean()))
    worst = min(shares, default=None)
    if worst is not None and worst < min_agreement:
        failures.append(f"ARM and host masks agree on {worst:.4%} of pixels at worst, below {min_agreement:.2%}")
    return worst, failures


def has_foreground(lines):
    return any(1.0 - line.get("class_fractions", {}).get("background", 1.0) > 0.01 for line in lines)


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: compare_masks.py ARM_DIR HOST_DIR [MIN_AGREEMENT]")
    arm_dir, host_dir = sys.argv[1], sys.argv[2]
    min_agreement = float(sys.argv[3]) if len(sys.argv) == 4 else MIN_AGREEMENT
    arm_lines, host_lines = results_lines(arm_dir), results_lines(host_dir)
    worst, failures = compare(arm_dir, arm_lines, host_dir, host_lines, min_agreement)
    if not arm_lines:
        failures.append(f"no results found in {arm_dir}")
    if not has_foreground(host_lines):
        failures.append("the host found no foreground in any image: the comparison would prove little")
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    if worst is not None:
        print(f"{len(arm_lines)} masks, {worst:.4%} of pixels agree at worst")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
