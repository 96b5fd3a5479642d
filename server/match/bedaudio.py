"""A bed's audio: its sounds, read once, superimposed at their weights as one level-matched loop."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..audio import io
from ..audio.graph import BED_SECONDS
from .beds import Bed
from .library import Library
from .synth import loop

LEVEL_DB = -26.0
"""Every bed plays at this RMS (dBFS), whatever it holds: a change of bed is not a change of level."""
PEAK = 0.9
"""No sample of a bed above this: a bed of three peaky sounds is turned down instead (rarely)."""
FADE = 0.5
"""Seconds of the joint that makes a bed of sounds of other lengths loop seamlessly."""

_cache: OrderedDict[tuple[str, int, float], np.ndarray] = OrderedDict()
_lock = threading.Lock()


def read(path: Path, sample_rate: int) -> np.ndarray:
    """A library sound as (frames, 2) float32 at unit RMS, decoded once (the last 16 are kept)."""
    key = (str(path), sample_rate, path.stat().st_mtime)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    data, _ = io.read(path, sample_rate)
    data = data[: int(2 * BED_SECONDS * sample_rate)]  # (no more is ever played)
    stereo = np.repeat(data, 2, axis=1) if data.shape[1] == 1 else data[:, :2]
    stereo = stereo.astype(np.float32) / (np.sqrt(np.mean(stereo.astype(np.float64) ** 2)) + 1e-12)
    with _lock:
        _cache[key] = stereo
        while len(_cache) > 16:
            _cache.popitem(last=False)
    return stereo


def mix(bed: Bed, library: Library, sample_rate: int, level_db: float = LEVEL_DB) -> np.ndarray:
    """The bed as one seamless loop of :data:`BED_SECONDS`, (frames, 2) float32, at ``level_db`` RMS.

    Each sound's amplitude is the square root of its weight, so its share of the power is its
    weight (the sounds are uncorrelated). Shorter sounds repeat, longer ones are cut; unless every
    sound is a loop of exactly that length (the default library's), the bed's own joint is
    crossfaded.
    """
    by_name = {s.name: s for s in library.sounds}
    sounds = [read(by_name[name].path, sample_rate) for name in bed.sounds]
    n = int(BED_SECONDS * sample_rate)
    fade = int(FADE * sample_rate)
    seamless = all(s.shape[0] == n for s in sounds)
    total = n if seamless else n + fade  # loop() takes the fade off again
    out = np.zeros((total, 2), np.float64)
    for sound, w in zip(sounds, bed.weights, strict=True):
        reps = -(-total // sound.shape[0])
        out += np.sqrt(w) * np.tile(sound, (reps, 1))[:total]
    if not seamless:
        out = loop(out, fade)
    out *= 10 ** (level_db / 20) / (np.sqrt(np.mean(out**2)) + 1e-12)
    peak = float(np.abs(out).max())
    if peak > PEAK:
        out *= PEAK / peak
    return out.astype(np.float32)


def extend(bed_loop: np.ndarray, frames: int) -> np.ndarray:
    """``frames`` of the loop played on (for a file of any length)."""
    reps = -(-frames // bed_loop.shape[0])
    return np.tile(bed_loop, (reps, 1))[:frames]
