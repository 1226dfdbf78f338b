"""Draw the study figure: per centre, one image with the ground truth, the
prediction without DCIN and with full DCIN, each as an overlay.

Run from the repository root after `cargo build --release`:
    python3 models/train/study_figure.py --model models/MODEL.onnx --out docs/study/overlays.png
"""

import argparse
import csv
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CENTRES = [("C3", "test"), ("C1", "target"), ("C2", "target"), ("C4", "target"), ("C5", "target")]
TILE = (256, 192)


def pick(data: Path, centre: str, split: str, rank: int) -> str:
    """Return the id of the image at `rank` among those with 5–30 % polyp."""
    with open(data / "manifest.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle)
                if r["centre"] == centre and r["split"] == split and 0.05 <= float(r["polyp_fraction"]) <= 0.3]
    return rows[rank % len(rows)]["id"]


def blend(image: Image.Image, mask: np.ndarray) -> Image.Image:
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    colour = np.array([255, 64, 64], np.float32)
    rgb[mask > 0] = 0.55 * rgb[mask > 0] + 0.45 * colour
    return Image.fromarray(rgb.astype(np.uint8))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="segmentation ONNX (card beside it)")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/polypgen"), help="PolypGen folder")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--rank", type=int, default=3, help="which qualifying image of each centre to show")
    args = parser.parse_args()

    columns = ["truth", "no DCIN", "GRIS+LRIS"]
    sheet = Image.new("RGB", (TILE[0] * 3, (TILE[1] + 18) * len(CENTRES)), "white")
    draw = ImageDraw.Draw(sheet)
    with tempfile.TemporaryDirectory() as work:
        for row, (centre, split) in enumerate(CENTRES):
            image_id = pick(args.data, centre, split, args.rank)
            image_path = args.data / centre / "images" / f"{image_id}.jpg"
            image = Image.open(image_path).convert("RGB")
            truth = np.asarray(Image.open(args.data / centre / "masks" / f"{image_id}.png").convert("L")) >= 128
            tiles = [blend(image, truth)]
            for mode in ("none", "full"):
                out = Path(work) / f"{centre}-{mode}"
                subprocess.run(["./target/release/throatseg", "segment", str(image_path), "--out", str(out),
                                "--mode", mode, "--model", str(args.model)], check=True, capture_output=True)
                tiles.append(Image.open(out / f"{image_id}.overlay.png"))
            top = row * (TILE[1] + 18)
            draw.text((4, top + 3), f"{centre} {image_id}: " + " | ".join(columns), fill="black")
            for column, tile in enumerate(tiles):
                sheet.paste(tile.resize(TILE, Image.BILINEAR), (column * TILE[0], top + 18))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
