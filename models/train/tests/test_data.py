"""Tests of the loaders (folders, 0/255 masks, COCO by name, PolypGen) and the augmentation."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from throatseg_train.augment import Augmenter
from throatseg_train.data import (SegmentationDataset, load_coco, load_folder, load_polypgen, read_mask,
                                  split_validation)

CLASSES = ["background", "disc", "square"]


def test_folder_reads_class_indices(scenes):
    samples = load_folder(scenes / "images", scenes / "masks3", 3, 64, 48)
    assert samples.images.shape == (10, 48, 64, 3)
    assert samples.images.dtype == np.uint8
    assert samples.masks.shape == (10, 48, 64)
    original = np.asarray(Image.open(scenes / "masks3" / "scene_00.png"))
    assert np.array_equal(samples.masks[0], original)
    assert set(np.unique(samples.masks)) == {0, 1, 2}


def test_folder_resizes_masks_by_nearest(scenes):
    samples = load_folder(scenes / "images", scenes / "masks3", 3, 32, 32)
    assert samples.masks.shape == (10, 32, 32)
    assert set(np.unique(samples.masks)) <= {0, 1, 2}


def test_binary_masks_become_zero_one(scenes):
    samples = load_folder(scenes / "images", scenes / "masks255", 2, 64, 48)
    assert set(np.unique(samples.masks)) == {0, 1}
    indices = np.asarray(Image.open(scenes / "masks3" / "scene_03.png"))
    assert np.array_equal(samples.masks[3], (indices == 1).astype(np.uint8))


def test_mask_values_beyond_classes_rejected(scenes):
    with pytest.raises(ValueError, match="invalid mask values"):
        load_folder(scenes / "images", scenes / "masks255", 3, 64, 48)


def test_palette_masks_give_their_indices(tmp_path):
    values = np.array([[0, 1], [2, 1]], dtype=np.uint8)
    image = Image.fromarray(values, mode="P")
    image.putpalette([0, 0, 0, 250, 10, 10, 10, 250, 10] + [0] * 759)
    image.save(tmp_path / "palette.png")
    assert np.array_equal(read_mask(tmp_path / "palette.png", 3), values)


def test_missing_masks_are_named(scenes, tmp_path):
    for name in ("scene_00.png", "scene_01.png"):
        (tmp_path / name).write_bytes((scenes / "masks3" / name).read_bytes())
    with pytest.raises(ValueError, match="masks missing for 8 images, e.g. scene_02.png"):
        load_folder(scenes / "images", tmp_path, 3, 64, 48)


def test_coco_maps_categories_by_name(scenes):
    # Category ids (2 = disc, 5 = square) differ from the class order on purpose.
    coco = load_coco(scenes / "coco.json", None, CLASSES, 64, 48)
    folder = load_folder(scenes / "images", scenes / "masks3", 3, 64, 48)
    assert coco.names[0] == "images/scene_00.png"
    assert np.array_equal(coco.images, folder.images)
    assert np.array_equal(coco.masks, folder.masks)


def test_coco_class_order_follows_classes(scenes):
    coco = load_coco(scenes / "coco.json", None, ["background", "square", "disc"], 64, 48)
    folder = load_folder(scenes / "images", scenes / "masks3", 3, 64, 48)
    swapped = np.choose(folder.masks, [0, 2, 1]).astype(np.uint8)
    assert np.array_equal(coco.masks, swapped)


def test_coco_unknown_category_is_named(scenes):
    with pytest.raises(ValueError, match=r"categories not in --classes: square"):
        load_coco(scenes / "coco.json", None, ["background", "disc"], 64, 48)


def test_coco_overlap_later_annotation_wins(scenes, tmp_path):
    data = json.loads((scenes / "coco.json").read_text())
    big = [0, 0, 64, 0, 64, 48, 0, 48]
    data["images"] = data["images"][:1]
    data["annotations"] = [
        {"id": 1, "image_id": 100, "category_id": 5, "segmentation": [big]},
        {"id": 2, "image_id": 100, "category_id": 2, "segmentation": [[10, 10, 30, 10, 30, 30, 10, 30]]},
    ]
    (tmp_path / "overlap.json").write_text(json.dumps(data))
    mask = load_coco(tmp_path / "overlap.json", scenes, CLASSES, 64, 48).masks[0]
    assert mask[20, 20] == 1  # the later disc annotation, drawn over the square
    assert mask[40, 50] == 2


def test_coco_rle_is_rejected(scenes, tmp_path):
    data = json.loads((scenes / "coco.json").read_text())
    data["annotations"][0]["segmentation"] = {"counts": [10, 5], "size": [48, 64]}
    (tmp_path / "rle.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="RLE"):
        load_coco(tmp_path / "rle.json", scenes, CLASSES, 64, 48)


def test_polypgen_manifest_splits(scenes):
    train = load_polypgen(scenes / "polypgen", "C3", "train", 64, 48)
    val = load_polypgen(scenes / "polypgen", "C3", "val", 64, 48)
    assert len(train) == 8
    assert len(val) == 2
    assert set(np.unique(train.masks)) == {0, 1}


def test_validation_hold_out_is_seeded(scenes):
    samples = load_folder(scenes / "images", scenes / "masks3", 3, 64, 48)
    train, val = split_validation(samples, 0.2, seed=3)
    again_train, again_val = split_validation(samples, 0.2, seed=3)
    assert len(val) == 2
    assert len(train) == 8
    assert val.names == again_val.names
    assert train.names == again_train.names
    assert not set(val.names) & set(train.names)


def test_augmentation_draws_are_independent():
    """Every transform must get its own random stream (see augment.py on Compose seeds)."""
    augmenter = Augmenter(seed=0)
    image = np.zeros((48, 64, 3), np.uint8)
    fired = []
    for transform in augmenter.photometric_compose.transforms:
        fired.append([transform.py_random.random() < 0.5 for _ in range(64)])
    assert len({tuple(f) for f in fired}) == len(fired)
    assert augmenter.photometric(image).shape == image.shape


def test_augmentation_repeats_per_epoch(scenes):
    samples = load_folder(scenes / "images", scenes / "masks3", 3, 64, 48)
    first = SegmentationDataset(samples, "cqg", seed=5)
    second = SegmentationDataset(samples, "cqg", seed=5)
    first.set_epoch(2)
    second.set_epoch(2)
    for index in range(4):
        for a, b in zip(first[index], second[index]):
            assert torch.equal(a, b)


def test_modes_give_their_views(scenes):
    samples = load_folder(scenes / "images", scenes / "masks3", 3, 64, 48)
    image, mask = SegmentationDataset(samples, "base")[0]
    assert torch.equal(image, torch.from_numpy(samples.images[0]).permute(2, 0, 1).float())
    assert torch.equal(mask, torch.from_numpy(samples.masks[0]).long())
    image, mask = SegmentationDataset(samples, "aug")[0]
    assert image.shape == (3, 48, 64)
    assert mask.shape == (48, 64)
    dataset = SegmentationDataset(samples, "cqg", seed=0)
    changed = 0
    for index in range(len(samples)):
        x1, x2, y = dataset[index]
        assert x1.shape == (3, 48, 64)
        assert x2.shape == (3, 48, 64)
        assert y.dtype == torch.int64
        assert set(torch.unique(y).tolist()) <= {0, 1, 2}  # nearest keeps class indices
        changed += not torch.equal(x1, x2)
    assert changed > 0  # the photometric view differs from the geometric one
