"""Int8 post-training static quantization of an exported ONNX model (QOperator format).

The calibration images are preprocessed exactly as throatseg does at inference:
EXIF orientation, bilinear resize to the model input, then (x - mean) / std on the
0..255 scale with the card's normalisation.

tract-onnx 0.23 registers the standard ONNX integer operators (QuantizeLinear,
DequantizeLinear, QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger) but
none of the com.microsoft ones that onnxruntime emits for other operators
(QLinearAdd, QLinearConcat, QLinearMul, ...). `TRACT_OP_TYPES` therefore
quantizes only convolutions and the Clip/Relu nodes that onnxruntime folds into
them. Additions, concatenations and resizes run in float between
DequantizeLinear and QuantizeLinear nodes.
"""

import collections
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

from .data import list_images, load_rgb

# Operator types quantized for tract (see the module docstring).
TRACT_OP_TYPES = ("Conv", "Clip", "Relu")


def calibration_files(source: Path, count: int) -> list:
    """Return `count` image paths, evenly spaced in name order, from a folder or a list file.

    A list file contains one image path per line, relative to the list's folder.
    Blank lines and lines starting with '#' are skipped.
    """
    source = Path(source)
    if source.is_dir():
        files = list_images(source)
    else:
        lines = [line.strip() for line in source.read_text().splitlines()]
        files = [source.parent / line for line in lines if line and not line.startswith("#")]
    if not files:
        raise ValueError(f"{source}: no calibration images found")
    if count >= len(files):
        return files
    picks = np.linspace(0, len(files) - 1, count).round().astype(int)
    return [files[i] for i in picks]


def preprocess(path: Path, width: int, height: int, mean, std) -> np.ndarray:
    """Return the (1, 3, height, width) float32 input throatseg would feed for an image."""
    image = load_rgb(path, width, height).astype(np.float32)
    image = (image - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None])


class ImageCalibrationReader(CalibrationDataReader):
    """Feed preprocessed calibration images to onnxruntime's calibrator, one per call."""

    def __init__(self, files: list, input_name: str, width: int, height: int, mean, std):
        self.files = list(files)
        self.input_name = input_name
        self.size = (width, height)
        self.mean, self.std = mean, std
        self.position = 0

    def get_next(self):
        """Return the next {input name: tensor}, or None when all images were given."""
        if self.position >= len(self.files):
            return None
        path = self.files[self.position]
        self.position += 1
        return {self.input_name: preprocess(path, *self.size, self.mean, self.std)}

    def rewind(self):
        """Start again from the first image."""
        self.position = 0


def op_counts(path: Path) -> dict:
    """Return {op type: count} of an ONNX file's top-level graph."""
    model = onnx.load(str(path))
    return dict(collections.Counter(node.op_type for node in model.graph.node))


def quantize_int8(float_model: Path, out: Path, calibration: list, width: int, height: int, mean, std,
                  op_types=TRACT_OP_TYPES, per_channel: bool = True, activation_type: str = "uint8",
                  preprocess_model: bool = True) -> dict:
    """Write an int8 QOperator model calibrated on `calibration` image files.

    Activation ranges are the minimum and maximum over the calibration images
    (MinMax). Weights are signed int8 (symmetric, per output channel when
    `per_channel`), activations `activation_type` (uint8 or int8, asymmetric, which
    give the same outputs). `preprocess_model` runs onnxruntime's shape inference
    and graph optimisation first. Returns the op counts of the result.
    """
    float_model, out = Path(float_model), Path(out)
    source = float_model
    prepared = out.with_name(out.stem + ".prep.onnx")
    if preprocess_model:
        # The optimisation removes the Pad, Slice and Cast chains of the torch export,
        # which leaves one Conv node per convolution for the quantizer.
        quant_pre_process(str(float_model), str(prepared), skip_symbolic_shape=False)
        source = prepared
    input_name = onnx.load(str(source)).graph.input[0].name
    reader = ImageCalibrationReader(calibration, input_name, width, height, mean, std)
    activations = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[activation_type]
    # CalibMaxIntermediateOutputs stays unset because onnxruntime 1.32 discards each
    # full chunk without computing its range. MinMax stores only per-tensor minima and
    # maxima per image, so memory stays small without it.
    try:
        quantize_static(str(source), str(out), reader, quant_format=QuantFormat.QOperator,
                        op_types_to_quantize=list(op_types) if op_types else None,
                        per_channel=per_channel, activation_type=activations,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    finally:
        prepared.unlink(missing_ok=True)
    onnx.checker.check_model(onnx.load(str(out)))
    return op_counts(out)
