#!/usr/bin/env bash
# Nine dreams (three per ear) with `earsight dream` at its defaults; each writes FILE.png beside
# FILE.wav: the input's, the dream's and the change's spectrograms. Run from the repository root:
#   bash docs/dreams/make.sh [OUT]     (OUT: where the audio goes, default /tmp/earsight-dreams)
set -euo pipefail
out=${1:-/tmp/earsight-dreams}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
# The inputs: the battery's signals (earsight.sonify.signals), written at 16 kHz.
.venv/bin/python - "$out" <<'PY'
import sys
from earsight.audio import io
from earsight.sonify.signals import BATTERY, piano_chord

out = sys.argv[1]
for name in ("pink", "drums", "flute", "chorale"):
    io.write(f"{out}/{name}.wav", BATTERY[name](4.0, 16000), 16000)
io.write(f"{out}/piano.wav", piano_chord(4.0, 16000), 16000)
PY
dream() {  # ear input layer channel
    .venv/bin/earsight dream "$out/$2.wav" --ear "$1" --layer "$3" --channel "$4" --overwrite \
        --out "$out/$1-$3-$4-on-$2.wav"
    cp "$out/$1-$3-$4-on-$2.png" "$here/"
}
dream crepe pink pitch 228     # the 440 Hz bin (bins_to_hz(228) = 441.5 Hz)
dream crepe drums conv2 15
dream crepe flute conv4 10
dream musicnn piano tags 5      # drums
dream musicnn drums tags 9      # piano
dream musicnn chorale timbral 323
dream cpc chorale conv3 1
dream cpc drums conv3 4
dream cpc pink conv2 9
