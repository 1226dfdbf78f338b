"""The geometric and photometric transforms of METHOD.md, built with albumentations.

Parameters follow the CQG section of METHOD.md, and each transform fires with
p = 0.5. METHOD.md gives no border handling. Here shift/scale/rotate and the
elastic warp reflect (BORDER_REFLECT_101) and the shear fills with zeros, as
the albumentations 1.x defaults do. The DCIN-CQG reference implementation pins
albumentations 1.4.21 in its environment.yml.
NOTE: the arguments the reference code passes are not published, so the border
handling is an assumption.

albumentations 2.x `Compose(seed=s)` hands the same seed to every child
transform, so their p = 0.5 draws come out identical (all fire or none do). The
`Augmenter` therefore seeds each transform separately from (seed, epoch, index).
"""

import math

import albumentations as A
import cv2
import numpy as np

# Gaussian noise has a variance of 30..90 on the 0..255 scale. albumentations 2.x
# takes the standard deviation as a fraction of 255.
NOISE_STD_RANGE = (math.sqrt(30.0) / 255.0, math.sqrt(90.0) / 255.0)


def geometric_transforms() -> list:
    """Return the geometric transforms, applied to image and mask (masks by nearest neighbour)."""
    return [
        A.HorizontalFlip(p=0.5),
        A.Affine(shear=(-20, 20), interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST,
                 border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0, p=0.5),
        A.Affine(translate_percent={"x": (-0.0625, 0.0625), "y": (-0.0625, 0.0625)},
                 scale=(0.5, 1.5), keep_ratio=True, rotate=(-20, 20),
                 interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST,
                 border_mode=cv2.BORDER_REFLECT_101, p=0.5),
        A.ElasticTransform(alpha=35, sigma=5, interpolation=cv2.INTER_LINEAR,
                           mask_interpolation=cv2.INTER_NEAREST, border_mode=cv2.BORDER_REFLECT_101,
                           p=0.5),
    ]


def photometric_transforms() -> list:
    """Return the photometric (colour and quality) transforms, which change the image only."""
    return [
        A.Blur(blur_limit=(3, 11), p=0.5),
        A.Sharpen(alpha=(0.3, 0.9), lightness=(0.5, 1.0), p=0.5),
        A.GaussNoise(std_range=NOISE_STD_RANGE, p=0.5),
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
        A.RGBShift(r_shift_limit=20, g_shift_limit=20, b_shift_limit=20, p=0.5),
    ]


def seed_compose(compose: A.Compose, seed: int, epoch: int, stream: int):
    """Give a Compose and each of its transforms its own seed derived from (seed, epoch, stream)."""
    children = np.random.SeedSequence([seed, epoch, stream]).generate_state(len(compose.transforms) + 1)
    compose.set_random_seed(int(children[0]))
    for transform, child in zip(compose.transforms, children[1:]):
        transform.set_random_seed(int(child))


class Augmenter:
    """Apply the geometric transforms to image and mask, the photometric ones to an image."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.geometric_compose = A.Compose(geometric_transforms())
        self.photometric_compose = A.Compose(photometric_transforms())
        self.set_epoch(0)

    def set_epoch(self, epoch: int):
        """Reseed both pipelines for an epoch."""
        seed_compose(self.geometric_compose, self.seed, epoch, 0)
        seed_compose(self.photometric_compose, self.seed, epoch, 1)

    def geometric(self, image: np.ndarray, mask: np.ndarray) -> tuple:
        """Return the geometrically transformed (image, mask)."""
        out = self.geometric_compose(image=image, mask=mask)
        return out["image"], out["mask"]

    def photometric(self, image: np.ndarray) -> np.ndarray:
        """Return the photometrically transformed image (uint8, same size)."""
        return self.photometric_compose(image=image)["image"]
