#!/usr/bin/env bash
# Creates .venv-peers at the repository root with the Python peers that the
# OpenCV Lab parity test and benches/peers.py compare against: NumPy, OpenCV
# (headless, 4.x) and python-color-transfer. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=.venv-peers
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
pip_install=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
if ! "$venv/bin/python" -c "import numpy, cv2, python_color_transfer" 2>/dev/null; then
    "${pip_install[@]}" numpy "opencv-python-headless<5"
    # Its own requirements name the GUI build opencv-python, which would
    # install a second cv2 over the headless one, so it goes in without them.
    "${pip_install[@]}" --no-deps "python-color-transfer==0.1.2a0"
fi
"$venv/bin/python" -c "import cv2, python_color_transfer; print('peers: OpenCV', cv2.__version__)"
