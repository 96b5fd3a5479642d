#!/usr/bin/env bash
# The picture of the default sound library (sounds.png) and the match of real photographs from
# Debian and PyPI packages (printed; the table in README.md). Run from the repository root:
#   bash docs/match/make.sh [OUT]     (OUT: where the photos go, default /tmp/earsight-photos)
# The photos are not committed: they are fetched from their packages (apt-get download, pip download).
set -euo pipefail
out=${1:-/tmp/earsight-photos}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
.venv/bin/python - "$here/sounds.png" <<'PY'
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import signal

from earsight.match import synth

names = list(synth.SOUNDS)
fig, axes = plt.subplots(len(names) // 2, 2, figsize=(12, 1.3 * len(names) // 2), sharex=True)
for ax, name in zip(axes.T.ravel(), names):
    x = synth.make(name)[: 10 * synth.SR, 0]
    f, t, s = signal.spectrogram(x, synth.SR, nperseg=2048, noverlap=1536)
    ax.pcolormesh(t, f / 1000, 10 * np.log10(s + 1e-10), vmin=-90, vmax=-20, cmap="magma", shading="auto")
    ax.set_ylim(0, 12)
    ax.set_ylabel("kHz")
    ax.set_title(f"{name}: {', '.join(synth.SOUNDS[name][1][:4])}, ...", fontsize=8, loc="left")
for ax in axes[-1]:
    ax.set_xlabel("seconds (the first 10 of each 20 s loop)")
fig.tight_layout()
fig.savefig(sys.argv[1], dpi=80)
PY
cd "$out"
apt-get download tuxpaint-data tuxpaint-stamps-default tuxtype-data opencv-doc >/dev/null
for f in tuxpaint-data_*.deb tuxpaint-stamps-default_*.deb tuxtype-data_*.deb opencv-doc_*.deb; do
    dpkg-deb -x "$f" "x_${f%%_*}"
done
"$OLDPWD/.venv/bin/pip" download -q --no-deps ultralytics==8.4.190 -d pypi
unzip -o -q pypi/ultralytics-8.4.190-py3-none-any.whl 'ultralytics/assets/bus.jpg' -d x_ultralytics
"$OLDPWD/.venv/bin/python" - <<'PY'
from PIL import Image

def on_black(src, dst):  # a stamp is a cut-out with transparency: put it on black
    im = Image.open(src).convert("RGBA")
    bg = Image.new("RGBA", im.size, (0, 0, 0, 255))
    Image.alpha_composite(bg, im).convert("RGB").save(dst, quality=95)

on_black("x_tuxpaint-stamps-default/usr/share/tuxpaint/stamps/naturalforces/lightningbolt.png", "storm_lightning.jpg")
on_black("x_tuxpaint-stamps-default/usr/share/tuxpaint/stamps/naturalforces/fire.png", "fire_flame.jpg")
Image.open("x_opencv-doc/usr/share/doc/opencv-doc/opencv4/html/HDRtoneMapping_candleSample.jpg").crop(
    (0, 150, 497, 530)).save("fire_candle.jpg", quality=95)
PY
cp x_tuxpaint-data/usr/share/tuxpaint/templates/ocean_waves.jpg sea_waves.jpg
cp x_tuxtype-data/usr/share/tuxtype/images/kcas2.jpg sea_beach.jpg
cp x_tuxpaint-data/usr/share/tuxpaint/templates/redwoods_above.jpg forest_redwoods.jpg
cp x_tuxpaint-data/usr/share/tuxpaint/templates/sheep.jpg meadow_sheep.jpg
cp x_ultralytics/ultralytics/assets/bus.jpg street_bus.jpg
cp x_opencv-doc/usr/share/doc/opencv-doc/examples/text/scenetext01.jpg street_parking.jpg
cp x_tuxtype-data/usr/share/tuxtype/images/kcas1.jpg storm_clouds.jpg
cd "$OLDPWD"
OMP_NUM_THREADS=1 .venv/bin/earsight match "$out"/sea_waves.jpg "$out"/sea_beach.jpg "$out"/forest_redwoods.jpg \
    "$out"/meadow_sheep.jpg "$out"/street_bus.jpg "$out"/street_parking.jpg "$out"/storm_lightning.jpg \
    "$out"/storm_clouds.jpg "$out"/fire_flame.jpg "$out"/fire_candle.jpg --classes
