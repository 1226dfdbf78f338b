#!/usr/bin/env python3
"""Runs python-color-transfer's OpenCV Lab transfer on pairs of images, or
OpenCV's 8-bit Lab conversions on every possible input.

The parity test tests/lab_opencv.rs calls this with a tab-separated list of
pairs: input PNG, reference PNG, output stem. For each pair it writes two raw
files of height x width x 3 uint8 values, row by row:
  STEM.lab  cv2.cvtColor(input, COLOR_BGR2LAB): the 8-bit L, a, b codes
  STEM.rgb  ColorTransfer().lab_transfer(input, reference), as R, G, B
Raw bytes leave no doubt about the channel order that an image file would add.

With --all-codes DIR it writes DIR/rgb_to_lab.bin and DIR/lab_to_rgb.bin: the
conversion of all 2^24 triples (first value in the high byte of the index,
last in the low byte), 3 bytes each.

Usage (inside the venv that tests/peers/setup.sh makes):
  .venv-peers/bin/python tests/peers/opencv_lab.py PAIRS.tsv
  .venv-peers/bin/python tests/peers/opencv_lab.py --all-codes DIR
"""

import sys

import os

import cv2
import numpy as np
from python_color_transfer.color_transfer import ColorTransfer


def read_bgr(path):
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        sys.exit(f"{path}: cannot read the image")
    return image


def all_codes(directory):
    index = np.arange(1 << 24, dtype=np.uint32)
    triples = np.stack([index >> 16, (index >> 8) & 255, index & 255], axis=1).astype(np.uint8)
    image = triples.reshape(4096, 4096, 3)
    cv2.cvtColor(image, cv2.COLOR_RGB2LAB).tofile(os.path.join(directory, "rgb_to_lab.bin"))
    cv2.cvtColor(image, cv2.COLOR_LAB2RGB).tofile(os.path.join(directory, "lab_to_rgb.bin"))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--all-codes":
        all_codes(sys.argv[2])
        print(f"opencv {cv2.__version__}")
        return
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    transfer = ColorTransfer()
    with open(sys.argv[1], encoding="utf-8") as pairs:
        for line in pairs:
            if not line.strip():
                continue
            input_path, reference_path, stem = line.rstrip("\n").split("\t")
            image = read_bgr(input_path)
            reference = read_bgr(reference_path)
            cv2.cvtColor(image, cv2.COLOR_BGR2LAB).tofile(stem + ".lab")
            output = transfer.lab_transfer(img_arr_in=image, img_arr_ref=reference)
            cv2.cvtColor(output, cv2.COLOR_BGR2RGB).tofile(stem + ".rgb")
    print(f"opencv {cv2.__version__}")


if __name__ == "__main__":
    main()
