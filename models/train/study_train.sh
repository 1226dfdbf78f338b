#!/usr/bin/env bash
# Trains S_base, S_aug and S_CQG on PolypGen C3 train (selected on C3 val) and
# exports each to ONNX, f32 and int8 (calibrated on C3 train). Run from
# models/train; takes about an hour on two CPU cores.
set -euo pipefail
data=${THROATSEG_DATA:-../../../shared/data}/polypgen
for mode in base aug cqg; do
    python3 train.py --polypgen "$data" --mode "$mode" --out "runs/study-$mode" --seed 0
    python3 export.py unet --checkpoint "runs/study-$mode/best.pt" \
        --out "../polyp-unet-lite0-$mode.onnx" --name "polyp-unet-lite0-$mode" \
        --int8 "../polyp-unet-lite0-$mode-int8.onnx" --calibration ../references-c3.list
    cp "runs/study-$mode/history.json" "../polyp-unet-lite0-$mode.history.json"
done
