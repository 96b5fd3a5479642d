"""Signals and measures shared by the sonification tests (test_sonify_*.py)."""

from __future__ import annotations

import numpy as np

SR = 16000
MAX_DB = 3.0
"""Loudness bound for dream: output RMS within +-3 dB of the input's; peak <= 1."""


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def tone(seconds: float, seed: int = 0, noise: float = 0.01) -> np.ndarray:
    """A harmonic tone with a little noise: something every layer responds to a little."""
    t = np.arange(int(seconds * SR)) / SR
    hiss = np.random.default_rng(seed).standard_normal(t.shape)
    return (0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 660 * t) + noise * hiss).astype(np.float32)


def clicks(seconds: float, every: int = 4000, first: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Single-sample clicks on a faint noise floor; returns (audio, click positions)."""
    n = int(seconds * SR)
    x = 0.003 * np.random.default_rng(1).standard_normal(n).astype(np.float32)
    at = np.arange(first, n, every)
    x[at] = 0.8
    return x, at


def middling_channels(values: np.ndarray, count: int = 2) -> list[int]:
    """Channels around the upper middle of the mean activation, positive ones only: a ratio of
    means needs a positive denominator, and neither the strongest nor dead units."""
    means = values.reshape(values.shape[0], values.shape[1], -1).mean(axis=(0, 2))
    positive = [int(c) for c in np.argsort(means) if means[c] > 0.05 * np.abs(means).max()]
    picks = [positive[int(q * (len(positive) - 1))] for q in np.linspace(0.4, 0.7, count)]
    return list(dict.fromkeys(picks))
