"""Render the generalisation study's tables from the JSON cells in docs/study/.

    python3 models/train/study_table.py docs/study > /tmp/tables.md
"""

import json
import sys
from pathlib import Path

MODES = ["none", "gris", "lris", "full"]
TARGETS = [("C3", "C3 test (source, 46)"), ("C1", "C1 (256)"), ("C2", "C2 (301)"),
           ("C4", "C4 (227)"), ("C5", "C5 (208)")]
MODELS = [("base", "S_base"), ("aug", "S_aug"), ("cqg", "S_CQG")]


def cell(folder: Path, stem: str, centre: str, mode: str, key: str) -> str:
    path = folder / f"{stem}-{centre}-{mode}.json"
    if not path.exists():
        return "–"
    return f"{json.loads(path.read_text())[key]:.1f}"


def table(folder: Path, key: str, suffix: str) -> str:
    lines = ["| target | model | no DCIN | GRIS | LRIS | GRIS+LRIS |", "|---|---|---|---|---|---|"]
    for centre, label in TARGETS:
        for model, name in MODELS:
            stem = f"polyp-unet-lite0-{model}{suffix}"
            values = [cell(folder, stem, centre, mode, key) for mode in MODES]
            lines.append(f"| {label} | {name} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def main():
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/study")
    for key, title in [("macro_dice", "Macro Dice ×100 (background and polyp)"),
                       ("foreground_dice", "Foreground (polyp) Dice ×100")]:
        for suffix, precision in [("", "f32"), ("-int8", "int8")]:
            print(f"### {title}, {precision}\n\n{table(folder, key, suffix)}\n")


if __name__ == "__main__":
    main()
