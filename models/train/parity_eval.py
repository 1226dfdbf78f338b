"""Evaluate a model the way `throatseg eval` does, independently, in Python.

onnxruntime runs the ONNX models and NumPy does the lαβ statistics and transfer.
The reference choices (GRIS index, int8 LRIS top-1) are read from the same
.tsrefs file, and Pillow does the resizing. Prints one JSON object with the Dice
figures and, with --compare, checks them against `throatseg eval --json`.

    python3 parity_eval.py --images DIR --masks DIR --model M.onnx \
        --embedder E.onnx --refs R.tsrefs --mode full [--compare throatseg.json]
"""

import argparse
import json
import struct
import sys
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image, ImageOps

RGB_TO_LMS = np.array([[0.3811, 0.5783, 0.0402], [0.1967, 0.7244, 0.0782], [0.0241, 0.1288, 0.8444]])
LAB_MIX = np.diag([1 / np.sqrt(3), 1 / np.sqrt(6), 1 / np.sqrt(2)]) @ np.array(
    [[1.0, 1.0, 1.0], [1.0, 1.0, -2.0], [1.0, -1.0, 0.0]])
LMS_FLOOR = 1.0
MIN_STD = 1e-3
MIN_COUNTED_FRACTION = 0.01


def read_refs(path: Path) -> dict:
    """Read the header fields, statistics and int8 embeddings of a .tsrefs file."""
    data = path.read_bytes()
    if data[:8] != b"TSEGREFS":
        raise SystemExit(f"{path}: not a throatseg reference set")
    count, bins, dims, gris = struct.unpack_from("<4I", data, 16)
    dark_below, bright_from = data[40], data[41]
    sections = [struct.unpack_from("<2Q", data, 48 + 16 * i) for i in range(5)]
    stats = np.frombuffer(data, "<f4", count * 6, sections[1][0]).reshape(count, 6).astype(np.float64)
    scales = np.frombuffer(data, "<f4", count, sections[3][0]).astype(np.float64)
    codes = np.frombuffer(data, np.int8, count * dims, sections[4][0]).reshape(count, dims).astype(np.int32)
    return {"gris": gris, "stats": stats, "scales": scales, "codes": codes,
            "dark_below": dark_below, "bright_from": bright_from}


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """Convert (N, 3) RGB values on the 0..255 scale to lαβ."""
    lms = np.maximum(rgb @ RGB_TO_LMS.T, LMS_FLOOR)
    return np.log10(lms) @ LAB_MIX.T


def from_lab(lab: np.ndarray) -> np.ndarray:
    """Convert (N, 3) lαβ values back to RGB, rounded and clipped to 0..255."""
    lms = 10.0 ** (lab @ np.linalg.inv(LAB_MIX).T)
    rgb = lms @ np.linalg.inv(RGB_TO_LMS).T
    return np.clip(np.round(rgb), 0, 255)


def lab_stats(rgb: np.ndarray, dark_below: int, bright_from: int) -> np.ndarray:
    """Return lαβ mean and std (6 values) over the pixels that pass the filter."""
    pixels = rgb.reshape(-1, 3).astype(np.float64)
    keep = (pixels.max(axis=1) >= dark_below) & (pixels.min(axis=1) < bright_from)
    if keep.sum() < MIN_COUNTED_FRACTION * len(pixels) or keep.sum() == 0:
        keep = np.ones(len(pixels), bool)
    lab = to_lab(pixels[keep])
    return np.concatenate([lab.mean(axis=0), lab.std(axis=0)])


def transfer(rgb: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Reinhard transfer of every pixel from `source` statistics to `target` statistics."""
    shape = rgb.shape
    lab = to_lab(rgb.reshape(-1, 3).astype(np.float64))
    ratio = np.where(source[3:] < MIN_STD, 1.0, target[3:] / np.maximum(source[3:], 1e-30))
    lab = (lab - source[:3]) * ratio + target[:3]
    return from_lab(lab).reshape(shape).astype(np.uint8)


def quantise(values: np.ndarray):
    """Quantise a vector to int8 codes and one scale, as the reference set does."""
    peak = np.abs(values).max()
    if peak == 0:
        return np.zeros_like(values, np.int32), 0.0
    scale = peak / 127.0
    return np.clip(np.round(values / scale), -127, 127).astype(np.int32), scale


class Session:
    """An onnxruntime session with its card's size and normalisation."""

    def __init__(self, model: Path):
        card = json.loads(model.with_suffix(".json").read_text())
        self.width, self.height = card["input"]["width"], card["input"]["height"]
        self.mean = np.array(card["normalisation"]["mean"], np.float32)
        self.std = np.array(card["normalisation"]["std"], np.float32)
        self.classes = len(card.get("classes", []))
        self.session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def run(self, rgb: np.ndarray) -> np.ndarray:
        tensor = ((rgb.astype(np.float32) - self.mean) / self.std).transpose(2, 0, 1)[None]
        return self.session.run(None, {self.input: tensor})[0][0]


def resize(image: Image.Image, width: int, height: int) -> np.ndarray:
    return np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, required=True, help="folder of JPEG/PNG images")
    parser.add_argument("--masks", type=Path, required=True, help="folder of mask PNGs with the images' stems")
    parser.add_argument("--model", type=Path, required=True, help="segmentation ONNX (card beside it)")
    parser.add_argument("--embedder", type=Path, required=True, help="embedder ONNX (card beside it)")
    parser.add_argument("--refs", type=Path, required=True, help="reference set (.tsrefs)")
    parser.add_argument("--mode", choices=["none", "gris", "lris", "full"], default="full")
    parser.add_argument("--compare", type=Path, help="JSON printed by `throatseg eval --json` to compare with")
    parser.add_argument("--tolerance", type=float, default=0.5, help="largest allowed difference, Dice points")
    args = parser.parse_args()

    model, embedder, refs = Session(args.model), Session(args.embedder), read_refs(args.refs)
    classes = model.classes
    confusion = np.zeros((classes, classes), np.int64)
    images = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    for path in images:
        image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
        resized = resize(image, model.width, model.height)
        chosen = []
        if args.mode in ("gris", "full"):
            chosen.append(refs["gris"])
        if args.mode in ("lris", "full"):
            query, query_scale = quantise(embedder.run(resize(image, embedder.width, embedder.height)))
            scores = (refs["codes"] @ query) * query_scale * refs["scales"]
            chosen.append(int(np.argmax(scores)))
        if chosen:
            own = lab_stats(resized, refs["dark_below"], refs["bright_from"])
            logits = np.mean([model.run(transfer(resized, own, refs["stats"][i])) for i in chosen], axis=0)
        else:
            logits = model.run(resized)
        predicted = logits.argmax(axis=0)
        mask = Image.open(args.masks / f"{path.stem}.png").convert("L").resize((model.width, model.height), Image.NEAREST)
        truth = np.asarray(mask)
        truth = (truth >= 128).astype(np.int64) if classes == 2 else truth.astype(np.int64)
        confusion += np.bincount(truth.ravel() * classes + predicted.ravel(), minlength=classes * classes).reshape(classes, classes)

    tp = np.diag(confusion).astype(np.float64)
    fp = confusion.sum(axis=0) - tp
    fn = confusion.sum(axis=1) - tp
    present = (tp + fp + fn) > 0
    dice = np.where(present, 2 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)
    fg_tp = confusion[1:, 1:].sum()
    fg_fp = confusion[0, 1:].sum()
    fg_fn = confusion[1:, 0].sum()
    result = {"images": len(images), "mode": args.mode,
              "macro_dice": round(float(np.nanmean(dice)) * 100, 3),
              "foreground_dice": round(float(2 * fg_tp / max(2 * fg_tp + fg_fp + fg_fn, 1)) * 100, 3)}
    print(json.dumps(result))
    if args.compare:
        theirs = json.loads(args.compare.read_text())
        worst = max(abs(result[key] - theirs[key]) for key in ("macro_dice", "foreground_dice"))
        print(f"largest difference from throatseg: {worst:.3f} Dice points (tolerance {args.tolerance})")
        if worst > args.tolerance:
            sys.exit(1)


if __name__ == "__main__":
    main()
