#!/usr/bin/env python3
"""Times throatseg's colour kernels against two Python peers in the same run.

Peers, on the same images resized to 768x512:
  numpy_lalphabeta  Reinhard lαβ statistics and transfer in NumPy (float32),
                    with the same pixel filter as throatseg.
  opencv_lab        python-color-transfer's ColorTransfer.lab_transfer
                    (cv2.cvtColor to 8-bit Lab, mean/std transfer, back to BGR),
                    the transfer the published DCIN work used.

throatseg's figure is `colour_768x512_ms` from `throatseg bench --json`: the
statistics of the frame plus one transfer, the same work as the NumPy peer.
The OpenCV peer also converts the reference image each call, as its API does.

Usage (the peers' packages live in the venv that tests/peers/setup.sh makes):
  .venv-peers/bin/python benches/peers.py IMAGE... [--throatseg PATH] [--runs N]
Prints one JSON object with per-image medians and the ratios.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

import cv2
import numpy as np

RGB_TO_LMS = np.array([[0.3811, 0.5783, 0.0402], [0.1967, 0.7244, 0.0782], [0.0241, 0.1288, 0.8444]], np.float32)
LOG_LMS_TO_LAB = (np.diag([1 / np.sqrt(3), 1 / np.sqrt(6), 1 / np.sqrt(2)]) @ np.array(
    [[1, 1, 1], [1, 1, -2], [1, -1, 0]])).astype(np.float32)
LAB_TO_LOG_LMS = np.linalg.inv(LOG_LMS_TO_LAB).astype(np.float32)
LMS_TO_RGB = np.linalg.inv(RGB_TO_LMS).astype(np.float32)
SIZE = (768, 512)


def lab_of(rgb):
    lms = rgb.reshape(-1, 3).astype(np.float32) @ RGB_TO_LMS.T
    return np.log10(np.maximum(lms, 1.0)) @ LOG_LMS_TO_LAB.T


def numpy_stats(rgb):
    pixels = rgb.reshape(-1, 3)
    keep = (pixels.max(axis=1) >= 16) & (pixels.min(axis=1) < 250)
    lab = lab_of(rgb)[keep]
    return lab.mean(axis=0), lab.std(axis=0)


def numpy_transfer(rgb, target):
    mean, std = numpy_stats(rgb)
    lab = (lab_of(rgb) - mean) * (target[1] / np.maximum(std, 1e-3)) + target[0]
    lms = np.power(np.float32(10), lab @ LAB_TO_LOG_LMS.T)
    out = lms @ LMS_TO_RGB.T
    return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(rgb.shape)


def median_ms(function, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+")
    parser.add_argument("--throatseg", default="target/release/throatseg")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    from python_color_transfer.color_transfer import ColorTransfer
    peer = ColorTransfer()

    reference = cv2.resize(cv2.imread(args.images[0], cv2.IMREAD_COLOR), SIZE, interpolation=cv2.INTER_LINEAR)
    target = numpy_stats(cv2.cvtColor(reference, cv2.COLOR_BGR2RGB))
    rows = []
    for path in args.images:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            sys.exit(f"{path}: cannot read the image")
        bgr = cv2.resize(bgr, SIZE, interpolation=cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        numpy_ms = median_ms(lambda: numpy_transfer(rgb, target), args.runs)
        opencv_ms = median_ms(lambda: peer.lab_transfer(img_arr_in=bgr, img_arr_ref=reference), args.runs)
        bench = subprocess.run([args.throatseg, "bench", path, "--json", "--runs", str(args.runs)],
                               check=True, capture_output=True, text=True)
        ours = json.loads(bench.stdout)
        rows.append({
            "image": path,
            "throatseg_colour_768x512_ms": ours["colour_768x512_ms"],
            "throatseg_kernels": ours["colour_kernels"],
            "numpy_lalphabeta_ms": round(numpy_ms, 3),
            "opencv_lab_ms": round(opencv_ms, 3),
            "ratio_numpy": round(numpy_ms / ours["colour_768x512_ms"], 1),
            "ratio_opencv": round(opencv_ms / ours["colour_768x512_ms"], 1),
        })
    summary = {key: statistics.median(row[key] for row in rows)
               for key in ("throatseg_colour_768x512_ms", "numpy_lalphabeta_ms", "opencv_lab_ms",
                           "ratio_numpy", "ratio_opencv")}
    print(json.dumps({"runs": args.runs, "images": rows, "median": summary}, indent=1))


if __name__ == "__main__":
    main()
