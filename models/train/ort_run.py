"""Run an ONNX model with onnxruntime on a raw little-endian f32 input.

Used by the tract parity test: it writes the input tensor, this script writes
onnxruntime's output, and the test compares the two.

    python3 ort_run.py MODEL.onnx INPUT.f32 N,C,H,W OUTPUT.f32
"""

import sys

import numpy as np
import onnxruntime


def main():
    model, input_path, shape, output_path = sys.argv[1:5]
    dims = tuple(int(d) for d in shape.split(","))
    data = np.fromfile(input_path, dtype="<f4").reshape(dims)
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    (output,) = session.run(None, {name: data})
    output.astype("<f4").tofile(output_path)


if __name__ == "__main__":
    main()
