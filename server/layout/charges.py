"""Charges from activations: a neuron that varies more on a test signal gets more room.

Also the layer ranges (1st/99th percentile) the picture normalises each layer by.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..ears.base import Ear


def probe_signal(sample_rate: int, seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """A signal that exercises an ear: a log sweep, a click train, a chord and noise bursts.

    Returns (round(seconds * sample_rate),) float32 in [-1, 1], the same for the same seed.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    f0, f1 = 80.0, min(5000.0, 0.4 * sample_rate)
    sweep = np.sin(2 * np.pi * f0 * seconds / np.log(f1 / f0) * (np.exp(t / seconds * np.log(f1 / f0)) - 1))
    chord = np.sin(2 * np.pi * np.outer(t, [220.0, 277.2, 329.6])).mean(axis=1)
    clicks = np.zeros(n)
    clicks[:: max(1, sample_rate // 8)] = 1.0
    bursts = rng.standard_normal(n) * (np.sin(2 * np.pi * 1.5 * t) > 0.7)
    third = n // 3
    mix = np.concatenate([sweep[:third], chord[third : 2 * third], sweep[2 * third :] * 0.5]) + clicks + 0.3 * bursts
    return (0.5 * mix / np.max(np.abs(mix))).astype(np.float32)


def activation_stats(ear: Ear, seconds: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Run the test signal through ``ear``: (variance per neuron (n,), layer range (k, 2)), float32."""
    frames = ear.analyse(probe_signal(ear.sample_rate, seconds))
    variances = []
    ranges = []
    for layer in ear.layers:
        a = np.asarray(frames[layer.name], np.float32).reshape(-1, layer.size)
        if a.shape[0] == 0:
            variances.append(np.zeros(layer.size, np.float32))
            ranges.append((0.0, 1.0))
            continue
        variances.append(a.var(axis=0))
        lo, hi = np.percentile(a, [1, 99])
        ranges.append((float(lo), float(hi) if hi > lo else float(lo) + 1.0))
    return np.concatenate(variances).astype(np.float32), np.asarray(ranges, np.float32)


def charges_from_variance(variance: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """(n,) charges in [0.3, 3]: variance relative to its layer's mean, compressed by sqrt."""
    out = np.ones(variance.shape[0], np.float32)
    for k in np.unique(layer):
        v = variance[layer == k]
        mean = float(v.mean())
        if mean > 0:
            out[layer == k] = 0.3 + 0.7 * np.sqrt(v / mean)
    return np.clip(out, 0.3, 3.0)
