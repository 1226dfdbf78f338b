"""Training data: image/mask folders, COCO polygon files and PolypGen's manifest.

Every loader returns a `Samples` object with the images and class-index masks
already resized to the model input (images bilinear, masks nearest), so that an
epoch never decodes a file. `SegmentationDataset` turns samples into training
views for the three modes of METHOD.md (base, aug, cqg).
"""

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageOps

from .augment import Augmenter

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MODES = ("base", "aug", "cqg")


def open_rgb(path: Path) -> Image.Image:
    """Decode an image as RGB with its EXIF orientation applied, as throatseg does."""
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


def resize_rgb(image: Image.Image, width: int, height: int) -> np.ndarray:
    """Return an RGB image resized to width x height with PIL's bilinear filter, as HxWx3 uint8."""
    return np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.uint8)


def load_rgb(path: Path, width: int, height: int) -> np.ndarray:
    """Decode an image (EXIF orientation applied) and resize it to width x height, bilinear."""
    return resize_rgb(open_rgb(path), width, height)


def read_mask(path: Path, classes: int) -> np.ndarray:
    """Read a mask PNG as class indices (HxW uint8) at its own size.

    Palette PNGs give their palette indices, grey PNGs their values, and RGB PNGs
    are accepted only when the three channels are equal. With two classes, a mask
    that contains values above 1 is a 0/255 mask and is thresholded at 128.
    Otherwise every value must be a class index below `classes`.
    """
    with Image.open(path) as image:
        if image.mode in ("P", "L", "I", "I;16"):
            values = np.asarray(image)
        elif image.mode in ("RGB", "RGBA", "LA"):
            rgb = np.asarray(image.convert("RGB"))
            if not ((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()):
                raise ValueError(f"{path}: colour masks are not supported, save the class indices "
                                 "as a grey or palette PNG")
            values = rgb[..., 0]
        else:
            values = np.asarray(image.convert("L"))
    values = values.astype(np.int64)
    if classes == 2 and values.max(initial=0) > 1:
        return (values >= 128).astype(np.uint8)
    if values.max(initial=0) >= classes or values.min(initial=0) < 0:
        bad = sorted(set(np.unique(values).tolist()) - set(range(classes)))
        raise ValueError(f"{path}: invalid mask values {bad[:8]}, expected class indices "
                         f"0..{classes - 1} (check --classes)")
    return values.astype(np.uint8)


def resize_mask(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a class-index mask to width x height by nearest neighbour."""
    return np.asarray(Image.fromarray(mask).resize((width, height), Image.NEAREST), dtype=np.uint8)


@dataclass
class Samples:
    """Images (N, H, W, 3) uint8 and class-index masks (N, H, W) uint8 at the model size."""

    images: np.ndarray
    masks: np.ndarray
    names: list

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, indices) -> "Samples":
        """Return the samples at the given indices, in that order."""
        indices = list(indices)
        return Samples(self.images[indices], self.masks[indices], [self.names[i] for i in indices])


def stack(images: list, masks: list, names: list, width: int, height: int) -> Samples:
    """Build `Samples` from lists of arrays (empty lists give zero-length arrays)."""
    if not names:
        return Samples(np.zeros((0, height, width, 3), np.uint8), np.zeros((0, height, width), np.uint8), [])
    return Samples(np.stack(images), np.stack(masks), names)


def load_pairs(images: list, masks: list, classes: int, width: int, height: int) -> Samples:
    """Load image and mask files pairwise. Each mask must have the size of its image."""
    out_images, out_masks, names = [], [], []
    for image_path, mask_path in zip(images, masks):
        image = open_rgb(image_path)
        mask = read_mask(mask_path, classes)
        if (mask.shape[1], mask.shape[0]) != image.size:
            raise ValueError(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but {image_path} is "
                             f"{image.size[0]}x{image.size[1]} after its EXIF orientation, "
                             "so the pair does not match")
        out_images.append(resize_rgb(image, width, height))
        out_masks.append(resize_mask(mask, width, height))
        names.append(Path(image_path).name)
    return stack(out_images, out_masks, names, width, height)


def list_images(folder: Path) -> list:
    """Return the image files of a folder (not recursive), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def load_folder(images_dir: Path, masks_dir: Path, classes: int, width: int, height: int) -> Samples:
    """Load every image of `images_dir` with the mask `masks_dir/STEM.png` of the same stem."""
    images = list_images(images_dir)
    if not images:
        raise ValueError(f"{images_dir}: no images found (looked for {', '.join(IMAGE_SUFFIXES)})")
    masks = [Path(masks_dir) / f"{p.stem}.png" for p in images]
    missing = [m.name for m in masks if not m.exists()]
    if missing:
        raise ValueError(f"{masks_dir}: masks missing for {len(missing)} images, "
                         f"e.g. {', '.join(missing[:5])} (a mask is STEM.png)")
    return load_pairs(images, masks, classes, width, height)


def coco_class_map(data: dict, classes: list, source: Path) -> dict:
    """Map the COCO category ids used by annotations to class indices, by category name.

    Raises ValueError naming every used category whose name is not in `classes`.
    """
    names = {c["id"]: c["name"] for c in data.get("categories", [])}
    index = {name: i for i, name in enumerate(classes)}
    used = {a["category_id"] for a in data.get("annotations", [])}
    undeclared = sorted(str(c) for c in used if c not in names)
    if undeclared:
        raise ValueError(f"{source}: category ids missing from 'categories': {', '.join(undeclared)}")
    unknown = sorted({names[c] for c in used if names[c] not in index})
    if unknown:
        raise ValueError(f"{source}: categories not in --classes: {', '.join(unknown)} "
                         f"(classes: {', '.join(classes)})")
    return {c: index[names[c]] for c in used}


def rasterise(annotations: list, class_map: dict, width: int, height: int, source: str) -> np.ndarray:
    """Draw polygon annotations into a class-index mask of width x height.

    Annotations are drawn in the order given, so where polygons overlap the later
    annotation wins. Polygons with fewer than three points are skipped. RLE
    segmentations are rejected.
    """
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    for annotation in annotations:
        segmentation = annotation.get("segmentation")
        if isinstance(segmentation, dict):
            raise ValueError(f"{source}: annotation {annotation.get('id')} is RLE, which is not "
                             "supported, so export polygons")
        for polygon in segmentation or []:
            if len(polygon) < 6:
                continue
            points = [(float(x), float(y)) for x, y in zip(polygon[0::2], polygon[1::2])]
            draw.polygon(points, fill=class_map[annotation["category_id"]])
    return np.asarray(mask, dtype=np.uint8)


def load_coco(coco_file: Path, images_dir: Path, classes: list, width: int, height: int) -> Samples:
    """Load a COCO JSON file with polygon segmentations.

    `file_name` entries resolve against `images_dir` (default: the JSON file's
    folder). Categories map to classes by name. Images without annotations are
    all background.
    """
    coco_file = Path(coco_file)
    images_dir = Path(images_dir) if images_dir else coco_file.parent
    data = json.loads(coco_file.read_text())
    class_map = coco_class_map(data, classes, coco_file)
    by_image = {}
    for annotation in data.get("annotations", []):
        by_image.setdefault(annotation["image_id"], []).append(annotation)
    out_images, out_masks, names = [], [], []
    for entry in data.get("images", []):
        path = images_dir / entry["file_name"]
        image = open_rgb(path)
        size = (entry.get("width", image.size[0]), entry.get("height", image.size[1]))
        if size != image.size:
            raise ValueError(f"{coco_file}: image {entry['file_name']} is {image.size[0]}x{image.size[1]} "
                             f"after its EXIF orientation, but the JSON gives {size[0]}x{size[1]}")
        mask = rasterise(by_image.get(entry["id"], []), class_map, size[0], size[1], str(coco_file))
        out_images.append(resize_rgb(image, width, height))
        out_masks.append(resize_mask(mask, width, height))
        names.append(entry["file_name"])
    if not names:
        raise ValueError(f"{coco_file}: no images listed")
    return stack(out_images, out_masks, names, width, height)


def polypgen_split(root: Path, centre: str, split: str) -> list:
    """Return the ids of one centre and split from PolypGen's manifest.csv."""
    with open(Path(root) / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row["id"] for row in rows if row["centre"] == centre and row["split"] == split]


def load_polypgen(root: Path, centre: str, split: str, width: int, height: int) -> Samples:
    """Load one centre and split of PolypGen (0/255 masks, two classes)."""
    root = Path(root)
    ids = polypgen_split(root, centre, split)
    if not ids:
        raise ValueError(f"{root / 'manifest.csv'}: no rows for centre {centre}, split {split} "
                         "(check --centre)")
    images = [root / centre / "images" / f"{i}.jpg" for i in ids]
    masks = [root / centre / "masks" / f"{i}.png" for i in ids]
    return load_pairs(images, masks, 2, width, height)


def split_validation(samples: Samples, fraction: float, seed: int) -> tuple:
    """Split off a seeded random `fraction` of samples (at least one) for validation.

    Returns (train, val).
    """
    if len(samples) < 2:
        raise ValueError(f"only {len(samples)} images, too few to hold one out for validation, "
                         "so give a validation source")
    order = np.random.default_rng(seed).permutation(len(samples))
    count = min(max(1, round(fraction * len(samples))), len(samples) - 1)
    return samples.subset(sorted(order[count:])), samples.subset(sorted(order[:count]))


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """Turn an HxWx3 uint8 image into a 3xHxW float tensor on the 0..255 scale."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()


class SegmentationDataset(torch.utils.data.Dataset):
    """Training views of preloaded samples for one mode of METHOD.md.

    - base: the image and mask as loaded (resized only, normalised later in the training step).
    - aug: photometric(geometric(image)) and the geometric mask, one view.
    - cqg: x1 = geometric(image), x2 = photometric(x1) and the geometric mask.

    Items are (image, mask) for base and aug, (x1, x2, mask) for cqg. Images are
    float 0..255 tensors (3, H, W), masks int64 (H, W). Call `set_epoch` before
    each epoch to make the augmentation depend only on (seed, epoch, order).
    """

    def __init__(self, samples: Samples, mode: str, seed: int = 0):
        if mode not in MODES:
            raise ValueError(f"invalid mode {mode!r}, expected one of {', '.join(MODES)}")
        self.samples = samples
        self.mode = mode
        self.augmenter = Augmenter(seed) if mode != "base" else None

    def set_epoch(self, epoch: int):
        """Reseed the augmentation for an epoch (so resumed runs repeat it exactly)."""
        if self.augmenter is not None:
            self.augmenter.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        image = self.samples.images[index]
        mask = self.samples.masks[index]
        if self.mode == "base":
            return to_tensor(image), torch.from_numpy(mask.astype(np.int64))
        x1, y = self.augmenter.geometric(image, mask)
        x2 = self.augmenter.photometric(x1)
        y = torch.from_numpy(y.astype(np.int64))
        if self.mode == "aug":
            return to_tensor(x2), y
        return to_tensor(x1), to_tensor(x2), y


def normalise(batch: torch.Tensor, mean, std) -> torch.Tensor:
    """Scale a (N, 3, H, W) batch of 0..255 values with per-channel mean and std."""
    mean = torch.tensor(mean, dtype=batch.dtype).view(1, 3, 1, 1)
    std = torch.tensor(std, dtype=batch.dtype).view(1, 3, 1, 1)
    return (batch - mean) / std
