"""Shared fixtures: the recipe on the import path, two torch threads, generated data sets."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

TRAIN_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TRAIN_DIR))
torch.set_num_threads(2)

# Generated images: width x height in pixels.
SIZE = (64, 48)


def circle_polygon(cx: float, cy: float, r: float, points: int = 16) -> list:
    """Return a COCO polygon [x1, y1, x2, y2, ...] approximating a circle."""
    angles = np.linspace(0, 2 * np.pi, points, endpoint=False)
    return [float(v) for a in angles for v in (cx + r * np.cos(a), cy + r * np.sin(a))]


def square_polygon(x0: float, y0: float, side: float) -> list:
    """Return a COCO polygon of an axis-aligned square."""
    return [x0, y0, x0 + side, y0, x0 + side, y0 + side, x0, y0 + side]


def make_scene(rng: np.random.Generator) -> tuple:
    """Draw one image with a red disc (class 1) and a blue square (class 2).

    Returns (RGB image, class-index mask, disc polygon, square polygon).
    """
    width, height = SIZE
    background = tuple(int(v) for v in rng.integers(60, 200, 3))
    image = Image.new("RGB", SIZE, background)
    mask = Image.new("L", SIZE, 0)
    cx, cy = rng.uniform(14, width - 14), rng.uniform(14, height - 14)
    r = rng.uniform(6, 12)
    disc = circle_polygon(cx, cy, r)
    side = rng.uniform(6, 12)
    x0, y0 = rng.uniform(0, width - side), rng.uniform(0, height - side)
    square = square_polygon(x0, y0, side)
    for polygon, colour, value in ((disc, (220, 40, 40), 1), (square, (40, 60, 220), 2)):
        points = list(zip(polygon[0::2], polygon[1::2]))
        ImageDraw.Draw(image).polygon(points, fill=colour)
        ImageDraw.Draw(mask).polygon(points, fill=value)
    noisy = np.asarray(image, np.int16) + rng.integers(-10, 11, (height, width, 3))
    return Image.fromarray(noisy.clip(0, 255).astype(np.uint8)), np.asarray(mask), disc, square


@pytest.fixture(scope="session")
def scenes(tmp_path_factory) -> Path:
    """Write 10 generated scenes in every layout the loaders read, and return the folder.

    Layout: images/scene_N.png, masks3/ (0, 1, 2 class indices), masks255/ (0/255,
    disc only), coco.json (categories "square" id 5, "disc" id 2), and a PolypGen
    root polypgen/ with C3 train (8) and val (2) in manifest.csv.
    """
    root = tmp_path_factory.mktemp("scenes")
    for folder in ("images", "masks3", "masks255", "polypgen/C3/images", "polypgen/C3/masks"):
        (root / folder).mkdir(parents=True)
    rng = np.random.default_rng(1)
    coco = {"images": [], "annotations": [],
            "categories": [{"id": 5, "name": "square"}, {"id": 2, "name": "disc"}]}
    rows = ["id,centre,split,width,height,polyp_fraction,original_name"]
    for index in range(10):
        image, mask, disc, square = make_scene(rng)
        name = f"scene_{index:02d}"
        image.save(root / "images" / f"{name}.png")
        Image.fromarray(mask).save(root / "masks3" / f"{name}.png")
        binary = np.where(mask == 1, 255, 0).astype(np.uint8)
        Image.fromarray(binary).save(root / "masks255" / f"{name}.png")
        image.save(root / "polypgen/C3/images" / f"C3_{index:04d}.jpg", quality=95)
        Image.fromarray(binary).save(root / "polypgen/C3/masks" / f"C3_{index:04d}.png")
        split = "train" if index < 8 else "val"
        rows.append(f"C3_{index:04d},C3,{split},{SIZE[0]},{SIZE[1]},0.1,{name}.png")
        coco["images"].append({"id": 100 + index, "file_name": f"images/{name}.png",
                               "width": SIZE[0], "height": SIZE[1]})
        coco["annotations"].append({"id": 2 * index, "image_id": 100 + index, "category_id": 2,
                                    "segmentation": [disc], "iscrowd": 0})
        coco["annotations"].append({"id": 2 * index + 1, "image_id": 100 + index, "category_id": 5,
                                    "segmentation": [square], "iscrowd": 0})
    (root / "coco.json").write_text(json.dumps(coco))
    (root / "polypgen/manifest.csv").write_text("\n".join(rows) + "\n")
    return root
