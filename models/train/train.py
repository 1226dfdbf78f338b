"""Train the U-Net on image/mask folders and keep the checkpoint best on validation.

Example (the bundled polyp model):
    python3 train.py --data ../../../shared/data/polypgen --out runs/polyp-base
"""

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import torch

from throatseg_train.data import FolderDataset, normalise, polypgen_split
from throatseg_train.encoder import LITE_MEAN, LITE_STD
from throatseg_train.losses import ce_dice_loss
from throatseg_train.unet import LiteUNet


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="PolypGen root with manifest.csv")
    parser.add_argument("--centre", default="C3", help="source centre to train on")
    parser.add_argument("--out", type=Path, required=True, help="run folder for checkpoints and logs")
    parser.add_argument("--width", type=int, default=256, help="model input width in pixels")
    parser.add_argument("--height", type=int, default=192, help="model input height in pixels")
    parser.add_argument("--epochs", type=int, default=18)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def split_files(root: Path, centre: str, split: str):
    ids = polypgen_split(root, centre, split)
    images = [root / centre / "images" / f"{i}.jpg" for i in ids]
    masks = [root / centre / "masks" / f"{i}.png" for i in ids]
    return images, masks


def foreground_counts(logits, target):
    """Return (2TP, 2TP+FP+FN) for class 1, summed over the batch."""
    pred = logits.argmax(dim=1)
    tp = ((pred == 1) & (target == 1)).sum().item()
    fp = ((pred == 1) & (target != 1)).sum().item()
    fn = ((pred != 1) & (target == 1)).sum().item()
    return 2 * tp, 2 * tp + fp + fn


def evaluate(model, loader):
    model.eval()
    loss_sum, batches, numerator, denominator = 0.0, 0, 0, 0
    with torch.no_grad():
        for images, masks in loader:
            logits = model(normalise(images, LITE_MEAN, LITE_STD))
            loss_sum += ce_dice_loss(logits, masks).item()
            batches += 1
            a, b = foreground_counts(logits, masks)
            numerator += a
            denominator += b
    return loss_sum / max(batches, 1), numerator / max(denominator, 1)


def main():
    args = parse_args()
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    train_set = FolderDataset(*split_files(args.data, args.centre, "train"),
                              args.width, args.height, binary=True, augment=True, seed=args.seed)
    val_set = FolderDataset(*split_files(args.data, args.centre, "val"),
                            args.width, args.height, binary=True, augment=False)
    generator = torch.Generator().manual_seed(args.seed)
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch, shuffle=True,
                                               generator=generator, drop_last=True)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=args.batch)
    print(f"train {len(train_set)} images, val {len(val_set)} images", flush=True)

    model = LiteUNet(classes=2)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps = args.epochs * len(train_loader)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=args.lr, total_steps=steps,
                                                    pct_start=0.1)

    checkpoint = args.out / "last.pt"
    start_epoch, best_dice, history = 0, -1.0, []
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best_dice, history = state["epoch"] + 1, state["best_dice"], state["history"]
        print(f"resumed after epoch {start_epoch}", flush=True)

    for epoch in range(start_epoch, args.epochs):
        model.train()
        started = time.time()
        loss_sum = 0.0
        for step, (images, masks) in enumerate(train_loader):
            logits = model(normalise(images, LITE_MEAN, LITE_STD))
            loss = ce_dice_loss(logits, masks)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
            loss_sum += loss.item()
            print(f"\repoch {epoch + 1}/{args.epochs} step {step + 1}/{len(train_loader)} "
                  f"loss {loss_sum / (step + 1):.4f}", end="", flush=True)
        val_loss, val_dice = evaluate(model, val_loader)
        record = {"epoch": epoch + 1, "train_loss": loss_sum / len(train_loader),
                  "val_loss": val_loss, "val_foreground_dice": val_dice,
                  "seconds": round(time.time() - started, 1)}
        history.append(record)
        print("\n" + json.dumps(record), flush=True)
        if val_dice > best_dice:
            best_dice = val_dice
            torch.save(model.state_dict(), args.out / "best.pt")
        torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                    "scheduler": scheduler.state_dict(), "epoch": epoch,
                    "best_dice": best_dice, "history": history}, checkpoint)
    (args.out / "history.json").write_text(json.dumps(history, indent=1))
    print(f"best val foreground Dice {best_dice:.4f}", flush=True)


if __name__ == "__main__":
    main()
