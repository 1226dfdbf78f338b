"""Export the embedder or a trained U-Net to ONNX (and int8) with its model card beside it.

Examples (the bundled models):
    python3 export.py embedder --out ../embedder-lite0.onnx
    python3 export.py unet --checkpoint runs/polyp-base/best.pt --out ../polyp-unet-lite0-base.onnx \\
        --classes background polyp
U-Net with an int8 copy calibrated on C3 train images:
    python3 export.py unet --checkpoint runs/polyp-cqg/best.pt --out ../polyp-cqg-lite0.onnx \\
        --int8 ../polyp-cqg-lite0-int8.onnx --calibration ../references-c3.list
Int8 copy of an existing float model (reads its card):
    python3 export.py quantize --model ../polyp-unet-lite0-base.onnx --out ../polyp-unet-lite0-base-int8.onnx \\
        --calibration ../references-c3.list

Class names, input size and training mode default to the run.json that train.py
wrote beside the checkpoint.
"""

import argparse
import json
from pathlib import Path

import onnx
import torch

from throatseg_train.encoder import LITE_MEAN, LITE_STD, Lite0Embedder
from throatseg_train.quantize import TRACT_OP_TYPES, calibration_files, quantize_int8
from throatseg_train.unet import LiteUNet

OPSET = 13

# Overlay colours for the first classes; background is never drawn.
DEFAULT_COLOURS = [[0, 0, 0], [255, 64, 64], [64, 200, 255], [255, 210, 0], [90, 230, 90],
                   [200, 90, 255], [255, 140, 40], [40, 90, 255]]

INTEGER_OPS = ("QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger")
GLUE_OPS = ("QuantizeLinear", "DequantizeLinear")


def export(model: torch.nn.Module, out: Path, width: int, height: int, output_name: str):
    """Write `model` as ONNX with a fixed [1, 3, height, width] input and check it."""
    model.eval()
    dummy = torch.zeros(1, 3, height, width)
    torch.onnx.export(model, dummy, str(out), input_names=["image"], output_names=[output_name],
                      opset_version=OPSET, dynamo=False, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(str(out)))


def write_card(out: Path, card: dict):
    """Write the model card beside the ONNX file (same stem, .json)."""
    card_path = out.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {out} and {card_path}", flush=True)


def add_quantize_options(parser: argparse.ArgumentParser):
    """Add the int8 calibration options shared by `unet --int8` and `quantize`."""
    parser.add_argument("--calibration", type=Path, metavar="PATH",
                        help="calibration images, from the source domain's training set: a folder, "
                             "or a list file with one image path per line relative to the list "
                             "(e.g. ../references-c3.list)")
    parser.add_argument("--calibration-count", type=int, default=64, metavar="N",
                        help="number of calibration images, evenly spaced in name order (default: 64)")
    parser.add_argument("--per-tensor", dest="per_channel", action="store_false",
                        help="one weight scale per convolution instead of one per output channel "
                             "(per tensor lost about 5 Dice points on PolypGen C3 test)")


def quantize(float_model: Path, out: Path, card: dict, args) -> dict:
    """Write the int8 QOperator copy of `float_model` and its card, and return the op counts."""
    if args.calibration is None:
        raise SystemExit("error: int8 export needs --calibration (a folder or a list file of source images)")
    files = calibration_files(args.calibration, args.calibration_count)
    size = (card["input"]["width"], card["input"]["height"])
    norm = card["normalisation"]
    print(f"calibrating int8 on {len(files)} images from {args.calibration}", flush=True)
    counts = quantize_int8(float_model, out, files, *size, norm["mean"], norm["std"],
                           op_types=TRACT_OP_TYPES, per_channel=args.per_channel)
    integer = {op: n for op, n in counts.items() if op in INTEGER_OPS}
    floating = {op: n for op, n in counts.items() if op not in INTEGER_OPS + GLUE_OPS}
    int8_card = dict(card)
    int8_card["name"] = card["name"] + "-int8"
    int8_card["quantization"] = {
        "format": "onnxruntime static, QOperator",
        "weights": "int8, symmetric, " + ("per output channel" if args.per_channel else "per tensor"),
        "activations": "uint8, asymmetric",
        "calibration": {"images": len(files), "source": str(args.calibration), "method": "minmax"},
        "integer_ops": integer,
        "float_ops": floating,
    }
    write_card(out, int8_card)
    print(f"int8 ops: {json.dumps(integer)}, float ops: {json.dumps(floating)}", flush=True)
    return counts


def unet_card(args, run: dict, width: int, height: int) -> dict:
    """Return the card of an exported U-Net."""
    card = {"name": args.name or args.out.stem, "task": "segmentation",
            "classes": args.classes,
            "colours": [DEFAULT_COLOURS[i % len(DEFAULT_COLOURS)] for i in range(len(args.classes))],
            "input": {"width": width, "height": height, "layout": "NCHW", "colour": "RGB"},
            "normalisation": {"scale": "0..255", "mean": list(LITE_MEAN), "std": list(LITE_STD)},
            "output": {"layout": "NCHW", "kind": "logits"},
            "source": "U-Net decoder on EfficientNet-Lite0 (ImageNet), trained with models/train"}
    if run:
        card["training"] = {key: run[key] for key in ("mode", "epochs", "batch", "lr", "schedule",
                                                      "lambdas", "seed", "select", "data") if key in run}
    return card


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="kind", required=True)

    embedder = commands.add_parser("embedder", help="ImageNet EfficientNet-Lite0 embedder")
    embedder.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    embedder.add_argument("--width", type=int, default=224, help="input width in pixels (default: 224)")
    embedder.add_argument("--height", type=int, default=224, help="input height in pixels (default: 224)")
    embedder.add_argument("--name", help="model name for the card (default: efficientnet-lite0-imagenet-embedder)")

    unet = commands.add_parser("unet", help="trained U-Net, optionally with an int8 copy")
    unet.add_argument("--checkpoint", type=Path, required=True, help="U-Net state dict (best.pt)")
    unet.add_argument("--out", type=Path, required=True, help="float ONNX file to write")
    unet.add_argument("--classes", nargs="+", metavar="NAME",
                      help="class names in output channel order (default: from run.json)")
    unet.add_argument("--width", type=int, help="input width in pixels (default: from run.json, else 256)")
    unet.add_argument("--height", type=int, help="input height in pixels (default: from run.json, else 192)")
    unet.add_argument("--name", help="model name for the card (default: the file stem)")
    unet.add_argument("--int8", type=Path, metavar="FILE",
                      help="also write an int8 QOperator copy here, with its card beside it")
    add_quantize_options(unet)

    quant = commands.add_parser("quantize", help="int8 copy of an exported float model")
    quant.add_argument("--model", type=Path, required=True, help="float ONNX file with its card beside it")
    quant.add_argument("--out", type=Path, required=True, help="int8 ONNX file to write")
    add_quantize_options(quant)
    return parser


def main(argv=None):
    """Parse arguments and export."""
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.kind == "embedder":
        export(Lite0Embedder(), args.out, args.width, args.height, "embedding")
        card = {"name": args.name or "efficientnet-lite0-imagenet-embedder", "task": "embedding",
                "input": {"width": args.width, "height": args.height, "layout": "NCHW", "colour": "RGB"},
                "normalisation": {"scale": "0..255", "mean": list(LITE_MEAN), "std": list(LITE_STD)},
                "output": {"layout": "NC", "dimensions": 1280, "l2_normalised": True},
                "source": "EfficientNet-Lite0 ImageNet weights, pooled head features"}
        write_card(args.out, card)
    elif args.kind == "unet":
        run_file = args.checkpoint.parent / "run.json"
        run = json.loads(run_file.read_text()) if run_file.exists() else {}
        args.classes = args.classes or run.get("classes")
        if not args.classes:
            parser.error("--classes is missing and no run.json with classes is beside the checkpoint")
        width = args.width or run.get("width", 256)
        height = args.height or run.get("height", 192)
        model = LiteUNet(classes=len(args.classes), pretrained=False)
        model.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=True))
        export(model, args.out, width, height, "logits")
        card = unet_card(args, run, width, height)
        write_card(args.out, card)
        if args.int8 is not None:
            quantize(args.out, args.int8, card, args)
    else:
        card = json.loads(args.model.with_suffix(".json").read_text())
        quantize(args.model, args.out, card, args)


if __name__ == "__main__":
    main()
