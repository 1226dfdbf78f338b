#!/usr/bin/env bash
# Evaluates study models with `throatseg eval` on C3 test and the unseen centres
# C1, C2, C4 and C5, for every DCIN mode, writing one JSON per cell to
# docs/study/. Run from the repository root after `cargo build --release`:
#   models/train/study_eval.sh MODEL_STEM [CENTRES]
# e.g. models/train/study_eval.sh polyp-unet-lite0-cqg "C3 C1 C2 C4 C5"
# THROATSEG_BIN names another binary (default ./target/release/throatseg).
set -euo pipefail
stem=$1
centres=${2:-"C3 C1 C2 C4 C5"}
bin=${THROATSEG_BIN:-./target/release/throatseg}
data=${THROATSEG_DATA:-../shared/data}/polypgen
sets=$(mktemp -d)
trap 'rm -rf "$sets"' EXIT
mkdir -p docs/study
for centre in $centres; do
    split=target
    [ "$centre" = C3 ] && split=test
    mkdir -p "$sets/$centre/images" "$sets/$centre/masks"
    awk -F, -v c="$centre" -v s="$split" '$2==c && $3==s {print $1}' "$data/manifest.csv" |
        while read -r id; do
            ln -s "$(realpath "$data/$centre/images/$id.jpg")" "$sets/$centre/images/"
            ln -s "$(realpath "$data/$centre/masks/$id.png")" "$sets/$centre/masks/"
        done
    for mode in none gris lris full; do
        out="docs/study/$stem-$centre-$mode.json"
        "$bin" eval --images "$sets/$centre/images" --masks "$sets/$centre/masks" \
            --model "models/$stem.onnx" --mode "$mode" --json > "$out.tmp"
        mv "$out.tmp" "$out"
        echo "$stem $centre $mode: $(python3 -c "import json,sys; d=json.load(open('$out')); print(d['macro_dice'], d['foreground_dice'])")"
    done
done
