"""Image/mask folder loading for PolypGen-style data sets."""

import csv
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps


def load_rgb(path: Path, width: int, height: int) -> np.ndarray:
    """Decode an image (EXIF orientation applied) and resize it to width x height, bilinear."""
    image = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    return np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.uint8)


def load_mask(path: Path, width: int, height: int, binary: bool) -> np.ndarray:
    """Read a class-index mask (or a 0/255 mask when binary) resized with nearest."""
    mask = Image.open(path).convert("L").resize((width, height), Image.NEAREST)
    values = np.asarray(mask, dtype=np.uint8)
    if binary:
        return (values >= 128).astype(np.int64)
    return values.astype(np.int64)


def polypgen_split(root: Path, centre: str, split: str) -> list[str]:
    """Return the ids of one centre and split from PolypGen's manifest.csv."""
    with open(root / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row["id"] for row in rows if row["centre"] == centre and row["split"] == split]


class FolderDataset(torch.utils.data.Dataset):
    """Images and masks preloaded at the model size; flips when augment is set."""

    def __init__(self, images: list[Path], masks: list[Path], width: int, height: int,
                 binary: bool, augment: bool, seed: int = 0):
        self.images = np.stack([load_rgb(p, width, height) for p in images])
        self.masks = np.stack([load_mask(p, width, height, binary) for p in masks])
        self.augment = augment
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = self.images[index]
        mask = self.masks[index]
        if self.augment:
            if self.rng.random() < 0.5:
                image, mask = image[:, ::-1], mask[:, ::-1]
            if self.rng.random() < 0.5:
                image, mask = image[::-1], mask[::-1]
        image = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
        return image, torch.from_numpy(np.ascontiguousarray(mask))


def normalise(batch: torch.Tensor, mean, std) -> torch.Tensor:
    """Scale a (N, 3, H, W) batch of 0..255 values with per-channel mean and std."""
    mean = torch.tensor(mean, dtype=batch.dtype).view(1, 3, 1, 1)
    std = torch.tensor(std, dtype=batch.dtype).view(1, 3, 1, 1)
    return (batch - mean) / std
