"""Export the embedder or a trained U-Net to ONNX with its model card beside it.

Examples (the bundled models):
    python3 export.py embedder --out ../embedder-lite0.onnx
    python3 export.py unet --checkpoint runs/polyp-base/best.pt --out ../polyp-unet-lite0.onnx \
        --classes background polyp
"""

import argparse
import json
from pathlib import Path

import onnx
import torch

from throatseg_train.encoder import LITE_MEAN, LITE_STD, Lite0Embedder
from throatseg_train.unet import LiteUNet

OPSET = 13

# Overlay colours for the first classes; background is never drawn.
DEFAULT_COLOURS = [[0, 0, 0], [255, 64, 64], [64, 200, 255], [255, 210, 0], [90, 230, 90],
                   [200, 90, 255], [255, 140, 40], [40, 90, 255]]


def export(model: torch.nn.Module, out: Path, width: int, height: int, output_name: str):
    model.eval()
    dummy = torch.zeros(1, 3, height, width)
    torch.onnx.export(model, dummy, str(out), input_names=["image"], output_names=[output_name],
                      opset_version=OPSET, dynamo=False, do_constant_folding=True)
    onnx.checker.check_model(onnx.load(str(out)))


def write_card(out: Path, card: dict):
    card_path = out.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {out} and {card_path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["embedder", "unet"])
    parser.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    parser.add_argument("--checkpoint", type=Path, help="U-Net state dict (best.pt)")
    parser.add_argument("--classes", nargs="+", help="class names in output channel order")
    parser.add_argument("--width", type=int, help="input width in pixels")
    parser.add_argument("--height", type=int, help="input height in pixels")
    parser.add_argument("--name", help="model name for the card")
    args = parser.parse_args()

    normalisation = {"scale": "0..255", "mean": list(LITE_MEAN), "std": list(LITE_STD)}
    if args.kind == "embedder":
        width, height = args.width or 224, args.height or 224
        export(Lite0Embedder(), args.out, width, height, "embedding")
        card = {"name": args.name or "efficientnet-lite0-imagenet-embedder", "task": "embedding",
                "input": {"width": width, "height": height, "layout": "NCHW", "colour": "RGB"},
                "normalisation": normalisation,
                "output": {"layout": "NC", "dimensions": 1280, "l2_normalised": True},
                "source": "EfficientNet-Lite0 ImageNet weights, pooled head features"}
    else:
        if args.checkpoint is None or not args.classes:
            parser.error("unet export needs --checkpoint and --classes")
        width, height = args.width or 256, args.height or 192
        model = LiteUNet(classes=len(args.classes), pretrained=False)
        model.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=True))
        export(model, args.out, width, height, "logits")
        card = {"name": args.name or args.out.stem, "task": "segmentation",
                "classes": args.classes,
                "colours": [DEFAULT_COLOURS[i % len(DEFAULT_COLOURS)] for i in range(len(args.classes))],
                "input": {"width": width, "height": height, "layout": "NCHW", "colour": "RGB"},
                "normalisation": normalisation,
                "output": {"layout": "NCHW", "kind": "logits"},
                "source": "U-Net decoder on EfficientNet-Lite0 (ImageNet), trained with models/train"}
    write_card(args.out, card)


if __name__ == "__main__":
    main()
