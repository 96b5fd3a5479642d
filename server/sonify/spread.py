"""A yardstick for every unit: how much its activation varies over reference audio (its spread).

A dream's rise (activation after minus before) means little on its own: units live on scales
that differ by orders of magnitude, and a ratio of a negative mean means nothing at all. Measured
in spreads (the standard deviation of the unit's per-frame activation over about 20 s of audio
the project makes itself), a rise of 2 means the same for every unit of every ear: the dream
moved it twice as far as music and noise usually do.

The reference audio: pink noise, a sine sweep, a click train, a piano-like chord, near-silence,
and two of pyo's recordings (flute, drum loop). Spreads are computed once per ear (per weights:
keyed by the ear's fingerprint) and cached.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..ears.base import Ear
from ..paths import cache_dir, write_atomically
from .target import Target

log = logging.getLogger(__name__)
_cache: dict[str, dict[str, np.ndarray]] = {}
_lock = threading.Lock()
_pending: set[str] = set()


def reference_audio(sample_rate: int, seed: int = 0) -> np.ndarray:
    """About 20 s of mono float32 at ``sample_rate``: varied, repeatable, made here or shipped by pyo."""
    from ..audio import io, pyo_example_sound

    rng = np.random.default_rng(seed)
    sr = sample_rate

    def seconds(s: float) -> np.ndarray:
        return np.arange(int(s * sr)) / sr

    white = rng.standard_normal(int(3 * sr))
    spectrum = np.fft.rfft(white)
    spectrum[1:] /= np.sqrt(np.arange(1, spectrum.size))  # 1/f power: pink
    pink = np.fft.irfft(spectrum, white.size)
    pink *= 0.2 / np.sqrt(np.mean(pink**2))
    t = seconds(3.0)
    sweep = 0.3 * np.sin(2 * np.pi * 50.0 * (8000.0 / 50.0) ** (t / 3.0) * 3.0 / np.log(8000.0 / 50.0))
    clicks = np.zeros(int(2 * sr))
    clicks[:: sr // 8] = 0.8
    t = seconds(3.0)
    chord = sum(0.1 * np.sin(2 * np.pi * f * k * t) / k * np.exp(-t) for f in (220.0, 277.2, 329.6) for k in (1, 2, 3))
    quiet = 1e-4 * rng.standard_normal(int(1 * sr))
    parts = [pink, sweep, clicks, np.asarray(chord), quiet]
    for name in ("flute.aif", "drumloop.wav"):
        parts.append(io.read(pyo_example_sound(name), sr, mono=True)[0][: int(4 * sr)])
    return np.concatenate(parts).astype(np.float32)


def channel_frames(ear: Ear, audio: np.ndarray) -> dict[str, np.ndarray]:
    """Each layer's per-frame channel means (over positions): layer -> ``(frames, channels)``."""
    ear.reset()
    frames = ear.analyse(audio)
    ear.reset()
    return {name: v.reshape(v.shape[0], v.shape[1], -1).mean(axis=2) for name, v in frames.items()}


def _key(ear: Ear) -> str:
    return f"{ear.name}-{ear.fingerprint()[:16]}"


def reference_frames(ear: Ear) -> dict[str, np.ndarray]:
    """:func:`channel_frames` of the reference audio, computed once per ear and weights."""
    key = _key(ear)
    with _lock:
        if key in _cache:
            return _cache[key]
        path: Path = cache_dir() / "spreads" / f"{key}.npz"
        if path.exists():
            with np.load(path) as stored:
                found = {name: stored[name] for name in stored.files}
        else:
            found = channel_frames(ear, reference_audio(ear.sample_rate))
            path.parent.mkdir(parents=True, exist_ok=True)
            arrays: dict[str, Any] = dict(found)  # (numpy's stubs read **kwargs as its own flags)
            write_atomically(path, lambda tmp: np.savez(tmp, **arrays))
        _cache[key] = found
        return found


def spread(ear: Ear, target: Target, *, wait: bool = True) -> float:
    """The standard deviation, over the reference frames, of the target's per-frame activation
    (its channels' mean; the position region is not taken into account).

    ``wait=False`` (the live sonifier): NaN until the ear's spreads are ready; the first call
    computes them in a thread of their own, so no live update waits seconds for them.
    """
    if not wait:
        key = _key(ear)
        with _lock:
            ready = key in _cache or (cache_dir() / "spreads" / f"{key}.npz").exists()
            start = not ready and key not in _pending
            if start:
                _pending.add(key)
        if start:
            threading.Thread(target=_compute, args=(ear, key), name="spreads", daemon=True).start()
        if not ready:
            return float("nan")
    per_frame = reference_frames(ear)[target.layer]
    chosen = list(target.channels) or list(range(per_frame.shape[1]))
    return float(per_frame[:, chosen].mean(axis=1).std())


def _compute(ear: Ear, key: str) -> None:
    try:
        reference_frames(ear)
    except Exception:  # the live status shows NaN; the next measured update asks again
        log.exception("spreads of %s", ear.name)
    finally:
        with _lock:
            _pending.discard(key)
