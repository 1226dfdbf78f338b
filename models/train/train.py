"""Train the U-Net (S_base, S_aug or S_CQG) and keep the checkpoint best on validation.

Give exactly one training source:
- PolypGen manifest: --polypgen ROOT [--centre C3] (the train and val splits of manifest.csv)
- image/mask folders: --train-images DIR --train-masks DIR [--val-images DIR --val-masks DIR]
- COCO polygons: --train-coco FILE [--train-images DIR] [--val-coco FILE [--val-images DIR]]
Without a validation source, --val-fraction of the training images is held out.

Examples:
    python3 train.py --polypgen ../../../shared/data/polypgen --mode cqg --out runs/polyp-cqg
    python3 train.py --train-coco throat/train.json --val-coco throat/val.json --mode cqg \\
        --classes background tonsil uvula tongue wall --out runs/throat-cqg

The run folder receives run.json (settings), last.pt (resume state), best.pt
(model weights of the best epoch) and history.json. Running the same command
again resumes after the last finished epoch.
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from throatseg_train.data import (MODES, SegmentationDataset, load_coco, load_folder, load_polypgen,
                                  normalise, split_validation)
from throatseg_train.encoder import LITE_MEAN, LITE_STD
from throatseg_train.losses import CQG_WEIGHTS, ce_dice_loss, cqg_loss
from throatseg_train.unet import LiteUNet

POLYPGEN_CLASSES = ["background", "polyp"]

# Settings that must match for a run folder to be resumed.
RESUME_KEYS = ("mode", "classes", "width", "height", "epochs", "batch", "lr", "schedule", "lambdas",
               "seed", "select", "pretrained", "data")


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data (give exactly one training source)")
    data.add_argument("--polypgen", "--data", dest="polypgen", type=Path, metavar="ROOT",
                      help="PolypGen folder that contains manifest.csv. Trains on the centre's "
                           "'train' split and validates on its 'val' split")
    data.add_argument("--centre", default="C3", help="PolypGen source centre (default: C3)")
    data.add_argument("--train-images", type=Path, metavar="DIR",
                      help="folder of training images. With --train-masks each mask is "
                           "MASKDIR/STEM.png, with --train-coco the COCO file names resolve against "
                           "this folder (default for COCO: the JSON file's folder)")
    data.add_argument("--train-masks", type=Path, metavar="DIR",
                      help="folder of training masks (PNG of class indices, or 0/255 for two classes)")
    data.add_argument("--train-coco", type=Path, metavar="FILE",
                      help="COCO JSON with polygon segmentations for training. Categories map to "
                           "--classes by name")
    data.add_argument("--val-images", type=Path, metavar="DIR",
                      help="folder of validation images, read like --train-images")
    data.add_argument("--val-masks", type=Path, metavar="DIR", help="folder of validation masks")
    data.add_argument("--val-coco", type=Path, metavar="FILE", help="COCO JSON for validation")
    data.add_argument("--val-fraction", type=float, default=0.1, metavar="F",
                      help="share of training images held out for validation when no validation "
                           "source is given (0..1, default: 0.1)")
    data.add_argument("--classes", nargs="+", metavar="NAME",
                      help="class names in output channel order, background first "
                           "(default for --polypgen: background polyp)")

    train = parser.add_argument_group("training")
    train.add_argument("--mode", choices=MODES, default="base",
                       help="base = resize and normalise only, CE+Dice. aug = geometric and "
                            "photometric transforms as one view, CE+Dice. cqg = CQG loss on a "
                            "geometric and a photometric view (default: base)")
    train.add_argument("--out", type=Path, required=True, help="run folder for checkpoints and logs")
    train.add_argument("--width", type=int, default=256,
                       help="model input width in pixels, a multiple of 32 (default: 256)")
    train.add_argument("--height", type=int, default=192,
                       help="model input height in pixels, a multiple of 32 (default: 192)")
    train.add_argument("--epochs", type=int, default=18, help="number of epochs (default: 18)")
    train.add_argument("--batch", type=int, default=8, help="images per step (default: 8)")
    train.add_argument("--lr", type=float, default=1e-3,
                       help="Adam learning rate, the peak of the one-cycle schedule (default: 1e-3)")
    train.add_argument("--schedule", choices=("onecycle", "constant"), default="onecycle",
                       help="learning-rate schedule per step: one-cycle (10%% warm-up, cosine decay) "
                            "or constant (default: onecycle)")
    train.add_argument("--lambdas", type=float, nargs=3, default=list(CQG_WEIGHTS),
                       metavar=("L1", "L2", "L3"),
                       help="CQG weights of DC(geometric view), DC(photometric view) and the logit MSE "
                            "(default: 0.3 0.7 1.0)")
    train.add_argument("--select", choices=("dice", "loss"), default="dice",
                       help="keep best.pt by the highest validation foreground Dice or the lowest "
                            "validation CE+Dice loss (default: dice)")
    train.add_argument("--seed", type=int, default=0,
                       help="seed for weights, shuffling, augmentation and the validation hold-out "
                            "(default: 0)")
    train.add_argument("--threads", type=int, default=2, help="CPU threads for torch (default: 2)")
    train.add_argument("--stop-after", type=int, metavar="N",
                       help="stop after N epochs in this invocation, then run the command again "
                            "to continue")
    train.add_argument("--no-pretrained", dest="pretrained", action="store_false",
                       help="start the encoder from random weights instead of ImageNet (for tests)")
    return parser


def load_data(args, parser) -> tuple:
    """Load (train, val, description) from the chosen source at the model size."""
    sources = [args.polypgen is not None, args.train_masks is not None, args.train_coco is not None]
    if sum(sources) != 1:
        parser.error("give exactly one of --polypgen, --train-masks (with --train-images) or --train-coco")
    size = (args.width, args.height)
    folder_options = [args.train_images, args.val_images, args.val_masks, args.val_coco]
    if args.polypgen is not None and any(option is not None for option in folder_options):
        parser.error("--polypgen reads its own splits, so leave out --train-images and the --val-* options")
    if args.val_images is not None and args.val_masks is None and args.val_coco is None:
        parser.error("--val-images needs --val-masks or --val-coco")
    if args.val_masks is not None and args.val_coco is not None:
        parser.error("give --val-masks or --val-coco, not both")
    if args.polypgen is not None:
        train = load_polypgen(args.polypgen, args.centre, "train", *size)
        val = load_polypgen(args.polypgen, args.centre, "val", *size)
        return train, val, {"polypgen": str(args.polypgen), "centre": args.centre}
    if args.train_masks is not None:
        if args.train_images is None:
            parser.error("--train-masks needs --train-images")
        train = load_folder(args.train_images, args.train_masks, len(args.classes), *size)
        description = {"train_images": str(args.train_images), "train_masks": str(args.train_masks)}
    else:
        train = load_coco(args.train_coco, args.train_images, args.classes, *size)
        description = {"train_coco": str(args.train_coco),
                       "train_images": str(args.train_images or args.train_coco.parent)}
    if args.val_masks is not None:
        if args.val_images is None:
            parser.error("--val-masks needs --val-images")
        val = load_folder(args.val_images, args.val_masks, len(args.classes), *size)
        description.update(val_images=str(args.val_images), val_masks=str(args.val_masks))
    elif args.val_coco is not None:
        val = load_coco(args.val_coco, args.val_images, args.classes, *size)
        description.update(val_coco=str(args.val_coco), val_images=str(args.val_images or args.val_coco.parent))
    else:
        train, val = split_validation(train, args.val_fraction, args.seed)
        description.update(val_fraction=args.val_fraction)
    return train, val, description


def dice_counts(logits: torch.Tensor, target: torch.Tensor, classes: int) -> np.ndarray:
    """Return per-class (TP, FP, FN) pixel counts, shape (classes, 3), summed over the batch."""
    pred = logits.argmax(dim=1)
    counts = np.zeros((classes, 3), dtype=np.int64)
    for c in range(classes):
        p, t = pred == c, target == c
        counts[c] = [(p & t).sum().item(), (p & ~t).sum().item(), (~p & t).sum().item()]
    return counts


def evaluate(model, samples, classes: int, batch: int) -> dict:
    """Return validation loss (CE+Dice) and data-set level Dice on unaugmented images.

    Dice per class is 2TP/(2TP+FP+FN) over all pixels of all images. Classes with
    no pixels in either ground truth or prediction are dropped. `val_mean_dice`
    averages all classes (background included, as METHOD.md reports),
    `val_foreground_dice` the classes after background.
    """
    model.eval()
    dataset = SegmentationDataset(samples, "base")
    loss_sum, weight, counts = 0.0, 0, np.zeros((classes, 3), dtype=np.int64)
    with torch.no_grad():
        for start in range(0, len(dataset), batch):
            items = [dataset[i] for i in range(start, min(start + batch, len(dataset)))]
            images = torch.stack([item[0] for item in items])
            masks = torch.stack([item[1] for item in items])
            logits = model(normalise(images, LITE_MEAN, LITE_STD))
            loss_sum += ce_dice_loss(logits, masks).item() * len(items)
            weight += len(items)
            counts += dice_counts(logits, masks, classes)
    tp, fp, fn = counts[:, 0], counts[:, 1], counts[:, 2]
    denominator = 2 * tp + fp + fn
    dice = [float(2 * tp[c] / denominator[c]) if denominator[c] else None for c in range(classes)]
    present = [d for d in dice if d is not None]
    foreground = [d for d in dice[1:] if d is not None]
    return {"val_loss": loss_sum / max(weight, 1),
            "val_mean_dice": float(np.mean(present)) if present else 0.0,
            "val_foreground_dice": float(np.mean(foreground)) if foreground else 0.0,
            "val_class_dice": dice}


class Progress:
    """Print step progress: a rewritten line on a terminal, about ten lines per epoch in a log."""

    def __init__(self, epoch: int, epochs: int, steps: int):
        self.prefix = f"epoch {epoch + 1}/{epochs}"
        self.steps = steps
        self.tty = sys.stdout.isatty()
        self.every = max(1, steps // 10)

    def step(self, step: int, text: str):
        """Report that `step` (0-based) finished, with a short loss summary."""
        line = f"{self.prefix} step {step + 1}/{self.steps} {text}"
        if self.tty:
            print("\r" + line, end="", flush=True)
        elif (step + 1) % self.every == 0 or step + 1 == self.steps:
            print(line, flush=True)

    def done(self):
        """End the progress line."""
        if self.tty:
            print(flush=True)


def save_atomically(state, path: Path):
    """Save with torch.save to a temporary file, then rename it, so a killed run leaves no torn file."""
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    partial.replace(path)


def seed_epoch(seed: int, epoch: int, generator: torch.Generator, dataset: SegmentationDataset):
    """Seed everything random in one epoch from (seed, epoch), so a resumed run repeats it."""
    torch_seed, shuffle_seed = np.random.SeedSequence([seed, epoch]).generate_state(2)
    torch.manual_seed(int(torch_seed))
    generator.manual_seed(int(shuffle_seed))
    dataset.set_epoch(epoch)


def train_epoch(model, loader, optimiser, scheduler, mode: str, lambdas, progress: Progress) -> dict:
    """Run one epoch and return the mean training loss (and CQG terms in cqg mode)."""
    model.train()
    sums = {}
    for step, batch in enumerate(loader):
        if mode == "cqg":
            x1, x2, masks = batch
            logits1 = model(normalise(x1, LITE_MEAN, LITE_STD))
            logits2 = model(normalise(x2, LITE_MEAN, LITE_STD))
            terms = cqg_loss(logits1, logits2, masks, lambdas)
            loss = terms.total
            values = {"train_loss": loss.item(), "train_dc_geometric": terms.dc_geometric.item(),
                      "train_dc_photometric": terms.dc_photometric.item(),
                      "train_consistency": terms.consistency.item()}
        else:
            images, masks = batch
            loss = ce_dice_loss(model(normalise(images, LITE_MEAN, LITE_STD)), masks)
            values = {"train_loss": loss.item()}
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if scheduler is not None:
            scheduler.step()
        for key, value in values.items():
            sums[key] = sums.get(key, 0.0) + value
        progress.step(step, " ".join(f"{k[6:]} {v / (step + 1):.4f}" for k, v in sums.items()))
    progress.done()
    return {key: value / len(loader) for key, value in sums.items()}


def main(argv=None):
    """Parse arguments, train, and write the run folder."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.classes is None:
        if args.polypgen is None:
            parser.error("--classes is required unless --polypgen is used")
        args.classes = POLYPGEN_CLASSES
    if args.polypgen is not None and len(args.classes) != 2:
        parser.error("PolypGen masks have two classes, so give two --classes or leave the option out")
    if len(args.classes) < 2 or len(set(args.classes)) != len(args.classes):
        parser.error("--classes needs at least two distinct names")
    if args.width % 32 or args.height % 32 or args.width <= 0 or args.height <= 0:
        parser.error("--width and --height must be positive multiples of 32 (five stride-2 stages)")
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    started = time.time()
    try:
        train_samples, val_samples, description = load_data(args, parser)
    except (ValueError, OSError) as error:
        sys.exit(f"error: {error}")
    config = {"mode": args.mode, "classes": args.classes, "width": args.width, "height": args.height,
              "epochs": args.epochs, "batch": args.batch, "lr": args.lr, "schedule": args.schedule,
              "lambdas": list(args.lambdas) if args.mode == "cqg" else None, "seed": args.seed,
              "select": args.select, "pretrained": args.pretrained, "data": description}
    if len(train_samples) < args.batch:
        parser.error(f"only {len(train_samples)} training images, fewer than one batch of {args.batch} "
                     "(lower --batch)")
    print(f"mode {args.mode}: train {len(train_samples)} images, val {len(val_samples)} images, "
          f"classes {' '.join(args.classes)} (loaded in {time.time() - started:.1f} s)", flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    train_set = SegmentationDataset(train_samples, args.mode, seed=args.seed)
    generator = torch.Generator()
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch, shuffle=True,
                                               generator=generator, drop_last=True)
    model = LiteUNet(classes=len(args.classes), pretrained=args.pretrained)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = None
    if args.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=args.lr, pct_start=0.1,
                                                        total_steps=args.epochs * len(train_loader))

    checkpoint = args.out / "last.pt"
    start_epoch, best, history = 0, None, []
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        saved = state.get("config", {})
        changed = [k for k in RESUME_KEYS if saved.get(k) != config[k]]
        if changed:
            sys.exit(f"{args.out} contains a run with other settings ({', '.join(changed)}). "
                     "Use another --out or delete the folder")
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        start_epoch, best, history = state["epoch"] + 1, state["best"], state["history"]
        print(f"resumed after epoch {start_epoch}", flush=True)
    (args.out / "run.json").write_text(json.dumps(config, indent=1) + "\n")

    last_epoch = args.epochs if args.stop_after is None else min(args.epochs, start_epoch + args.stop_after)
    for epoch in range(start_epoch, last_epoch):
        epoch_started = time.time()
        seed_epoch(args.seed, epoch, generator, train_set)
        progress = Progress(epoch, args.epochs, len(train_loader))
        record = {"epoch": epoch + 1, "lr": optimiser.param_groups[0]["lr"]}
        record.update(train_epoch(model, train_loader, optimiser, scheduler, args.mode, args.lambdas,
                                  progress))
        record.update(evaluate(model, val_samples, len(args.classes), args.batch))
        record["seconds"] = round(time.time() - epoch_started, 1)
        history.append(record)
        print(json.dumps(record), flush=True)
        score = record["val_foreground_dice"] if args.select == "dice" else -record["val_loss"]
        if best is None or score > best["score"]:
            best = {"score": score, "epoch": epoch + 1}
            save_atomically(model.state_dict(), args.out / "best.pt")
        save_atomically({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                         "scheduler": scheduler.state_dict() if scheduler is not None else None,
                         "epoch": epoch, "best": best, "history": history, "config": config}, checkpoint)
        (args.out / "history.json").write_text(json.dumps(history, indent=1) + "\n")
    if best is not None:
        print(f"best epoch {best['epoch']} by validation {args.select} "
              f"({abs(best['score']):.4f}), {len(history)}/{args.epochs} epochs done", flush=True)


if __name__ == "__main__":
    main()
