"""A bed's audio: its sounds, read once, superimposed at their weights as one level-matched loop."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..audio import io
from .beds import Bed
from .library import Library
from .synth import loop

LEVEL_DB = -26.0
"""Every bed plays at this RMS (dBFS), whatever it holds: a change of bed is not a change of level."""
PEAK = 0.9
"""No sample of a bed above this: a bed of three peaky sounds is turned down instead (rarely)."""
FADE = 0.5
"""Seconds of the joint that makes a bed of sounds of different lengths loop seamlessly."""
LONGEST = 60.0
"""A bed loops after at most this many seconds (longer sounds are cut, their joint smoothed)."""

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
    data = data[: int(LONGEST * sample_rate)]
    stereo = np.repeat(data, 2, axis=1) if data.shape[1] == 1 else data[:, :2]
    stereo = stereo.astype(np.float32) / (np.sqrt(np.mean(stereo.astype(np.float64) ** 2)) + 1e-12)
    with _lock:
        _cache[key] = stereo
        while len(_cache) > 16:
            _cache.popitem(last=False)
    return stereo


def mix(bed: Bed, library: Library, sample_rate: int, level_db: float = LEVEL_DB) -> np.ndarray:
    """The bed as one seamless loop, (frames, 2) float32, at ``level_db`` RMS.

    Each sound's amplitude is the square root of its weight, so its share of the power is its
    weight (the sounds are uncorrelated). Shorter sounds repeat; where the bed's loop joins, it is
    crossfaded, so only a bed of equal-length loops (the default library) needs no joint.
    """
    by_name = {s.name: s for s in library.sounds}
    sounds = [read(by_name[name].path, sample_rate) for name in bed.sounds]
    n = max(s.shape[0] for s in sounds)
    out = np.zeros((n, 2), np.float64)
    for sound, w in zip(sounds, bed.weights, strict=True):
        reps = -(-n // sound.shape[0])
        out += np.sqrt(w) * np.tile(sound, (reps, 1))[:n]
    if any(s.shape[0] != n for s in sounds):
        out = loop(out, min(int(FADE * sample_rate), n // 4))
    out *= 10 ** (level_db / 20) / (np.sqrt(np.mean(out**2)) + 1e-12)
    peak = float(np.abs(out).max())
    if peak > PEAK:
        out *= PEAK / peak
    return out.astype(np.float32)


def extend(bed_loop: np.ndarray, frames: int) -> np.ndarray:
    """``frames`` of the loop played on (for a file of any length)."""
    reps = -(-frames // bed_loop.shape[0])
    return np.tile(bed_loop, (reps, 1))[:frames]
