"""Train one epoch in each mode on generated scenes, export float and int8 ONNX, run both."""

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

import export
import train

# Model input for the tests: both sides must be multiples of 32.
WIDTH, HEIGHT = 64, 64
COMMON = ["--epochs", "1", "--batch", "4", "--width", str(WIDTH), "--height", str(HEIGHT),
          "--threads", "2"]
REPO = Path(__file__).resolve().parents[3]


def source_args(source: str, scenes: Path) -> list:
    """Return the data options of train.py for one of the generated layouts."""
    if source == "folder":
        return ["--train-images", str(scenes / "images"), "--train-masks", str(scenes / "masks3"),
                "--classes", "background", "disc", "square"]
    if source == "coco":
        return ["--train-coco", str(scenes / "coco.json"), "--val-fraction", "0.2",
                "--classes", "background", "disc", "square"]
    return ["--polypgen", str(scenes / "polypgen"), "--centre", "C3"]


def run_onnx(path: Path, image: np.ndarray) -> np.ndarray:
    """Run an ONNX file in onnxruntime on one (1, 3, H, W) input."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: image})
    return output


@pytest.mark.parametrize("mode,source,classes", [("base", "folder", 3), ("aug", "coco", 3),
                                                 ("cqg", "polypgen", 2)])
def test_train_export_quantize_mode(mode, source, classes, scenes, tmp_path, capsys):
    run = tmp_path / "run"
    train.main(source_args(source, scenes) + ["--mode", mode, "--out", str(run)] + COMMON)
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 1
    assert math.isfinite(history[0]["train_loss"])
    assert ("train_consistency" in history[0]) == (mode == "cqg")
    assert json.loads((run / "run.json").read_text())["mode"] == mode
    assert "best epoch 1" in capsys.readouterr().out

    float_model, int8_model = tmp_path / "model.onnx", tmp_path / "model-int8.onnx"
    export.main(["unet", "--checkpoint", str(run / "best.pt"), "--out", str(float_model),
                 "--int8", str(int8_model), "--calibration", str(scenes / "images"),
                 "--calibration-count", "4"])
    card = json.loads(int8_model.with_suffix(".json").read_text())
    float_card = json.loads(float_model.with_suffix(".json").read_text())
    assert len(card["classes"]) == classes
    assert card["input"] == float_card["input"]
    assert card["training"]["mode"] == mode
    assert card["quantization"]["integer_ops"]["QLinearConv"] > 0

    proto = onnx.load(str(int8_model))
    assert proto.opset_import[0].version >= 13
    assert all(node.domain in ("", "ai.onnx") for node in proto.graph.node), "contrib ops tract lacks"
    image = np.random.default_rng(0).uniform(-1, 1, (1, 3, HEIGHT, WIDTH)).astype(np.float32)
    reference, quantized = run_onnx(float_model, image), run_onnx(int8_model, image)
    assert reference.shape == (1, classes, HEIGHT, WIDTH)
    assert quantized.shape == (1, classes, HEIGHT, WIDTH)
    assert np.isfinite(quantized).all()
    assert np.abs(quantized - reference).mean() < 0.25 * np.abs(reference).mean() + 0.05


def test_resumed_run_matches_uninterrupted(scenes, tmp_path):
    base = source_args("folder", scenes) + ["--mode", "cqg"] + COMMON
    base[base.index("--epochs") + 1] = "2"
    train.main(base + ["--out", str(tmp_path / "whole")])
    train.main(base + ["--out", str(tmp_path / "split"), "--stop-after", "1"])
    assert len(json.loads((tmp_path / "split" / "history.json").read_text())) == 1
    train.main(base + ["--out", str(tmp_path / "split")])
    whole = torch.load(tmp_path / "whole" / "last.pt", weights_only=False)
    split = torch.load(tmp_path / "split" / "last.pt", weights_only=False)
    assert [r["train_loss"] for r in whole["history"]] == [r["train_loss"] for r in split["history"]]
    for name, tensor in whole["model"].items():
        assert torch.equal(tensor, split["model"][name]), name


def test_resume_rejects_other_settings(scenes, tmp_path):
    args = source_args("folder", scenes) + ["--out", str(tmp_path / "run")] + COMMON
    train.main(args + ["--mode", "base"])
    with pytest.raises(SystemExit, match="other settings \\(mode\\)"):
        train.main(args + ["--mode", "aug"])


def throatseg_binary():
    """Return a built throatseg binary ($THROATSEG_BIN, else target/release or target/debug)."""
    candidates = [os.environ.get("THROATSEG_BIN"), REPO / "target/release/throatseg",
                  REPO / "target/debug/throatseg"]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


@pytest.mark.skipif(throatseg_binary() is None, reason="no built throatseg binary")
def test_tract_loads_the_int8_model(scenes, tmp_path):
    run = tmp_path / "run"
    train.main(source_args("polypgen", scenes) + ["--out", str(run)] + COMMON)
    int8_model = tmp_path / "model-int8.onnx"
    export.main(["unet", "--checkpoint", str(run / "best.pt"), "--out", str(tmp_path / "model.onnx"),
                 "--int8", str(int8_model), "--calibration", str(scenes / "images"),
                 "--calibration-count", "4"])
    result = subprocess.run([str(throatseg_binary()), "segment", str(scenes / "images" / "scene_00.png"),
                             "--out", str(tmp_path / "out"), "--mode", "none", "--model", str(int8_model)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "scene_00.mask.png").exists()
