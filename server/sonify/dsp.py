"""Pure numpy helpers of the sonifiers: STFT frames and overlap-add, a soft limiter, crossfades
and the loudness bound. Signals are ``(samples,)`` float32 unless a docstring says otherwise.
"""

from __future__ import annotations

import numpy as np


def stft_hop(hop: int, n_fft: int) -> int:
    """The STFT hop for a mask: the ear's hop if fine enough, else its largest divisor <= n_fft / 4."""
    if hop <= n_fft // 2:
        return hop
    return next(d for d in range(n_fft // 4, 0, -1) if hop % d == 0)


def stft_frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """``(samples,)`` -> Hann-windowed spectra ``(frames, n_fft // 2 + 1)`` complex, frame g at ``g * hop``."""
    count = (x.shape[-1] - n_fft) // hop + 1
    if count <= 0:
        return np.zeros((0, n_fft // 2 + 1), np.complex64)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(count)[:, None]
    return np.fft.rfft(x[idx] * np.hanning(n_fft + 1)[:-1], axis=-1)


def resynthesise(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    """Weighted overlap-add of ``(frames, bins)`` spectra (Hann analysis and synthesis) -> ``(length,)``."""
    window = np.hanning(n_fft + 1)[:-1]
    out = np.zeros(max(length, (spec.shape[0] - 1) * hop + n_fft), np.float64)
    norm = np.zeros_like(out)
    frames = np.fft.irfft(spec, n=n_fft, axis=-1) * window
    for g in range(spec.shape[0]):
        out[g * hop : g * hop + n_fft] += frames[g]
        norm[g * hop : g * hop + n_fft] += window**2
    # Where windows barely overlap (the very edges) dividing would amplify noise.
    out /= np.maximum(norm, 1e-3 * max(float(norm.max(initial=0.0)), 1e-12))
    return out[:length].astype(np.float32)


def soft_limit(x: np.ndarray, threshold: float = 0.8) -> np.ndarray:
    """Identity below ``threshold``, a tanh knee up to 1 above: continuous and smooth, so it cannot click."""
    a = np.abs(x)
    over = a > threshold
    if not over.any():
        return x
    knee = 1.0 - threshold
    y = x.copy()
    y[over] = np.sign(x[over]) * (threshold + knee * np.tanh((a[over] - threshold) / knee))
    return y


def crossfade(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Raised-cosine crossfade ``old -> new`` (``(n, ...)``); the gains sum to one.

    Consecutive live versions are nearly the same signal (correlated), so the gains sum to 1
    (equal-gain), not their squares (equal-power, which would swell by up to 3 dB).
    """
    n = old.shape[0]
    ramp = np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2
    ramp = ramp.reshape(-1, *([1] * (old.ndim - 1)))
    return (old * (1.0 - ramp) + new * ramp).astype(np.float32)


def within_db(reference: np.ndarray, signal: np.ndarray, db: float) -> bool:
    """Whether ``signal``'s RMS is within ``db`` dB of ``reference``'s (float64 sums)."""
    ref = float(np.mean(np.square(reference, dtype=np.float64)))
    power = float(np.mean(np.square(signal, dtype=np.float64)))
    return 10.0 ** (-db / 10.0) * ref <= power <= 10.0 ** (db / 10.0) * ref


def bound_loudness(reference: np.ndarray, signal: np.ndarray, db: float) -> np.ndarray:
    """``signal`` moved toward ``reference`` (both ``(samples,)``) just far enough that its RMS
    is within ``db`` dB of the reference's -> ``(samples,)`` float32.

    The result is ``reference + a (signal - reference)`` with the largest ``a`` in [0, 1] that
    keeps the bound: ``signal`` itself (the same array) when it already holds, the reference
    when nothing else does, so the bound always holds (a silent reference bounds nothing). A
    point between the two signals: its peak is at most the larger of theirs.
    """
    if within_db(reference, signal, db):
        return signal
    r = np.asarray(reference, np.float64)
    if not np.any(r):
        return signal
    d = np.asarray(signal, np.float64) - r
    # The power of reference + a d is a quadratic in a: R + 2 a C + a^2 D, R at a = 0. Aim a
    # thousandth of a dB inside, so float32 rounding of the result cannot cross the bound.
    power, cross, change = float(np.mean(r * r)), float(np.mean(r * d)), float(np.mean(d * d))
    margin = max(db - 1e-3, 0.5 * db)
    low, high = 10.0 ** (-margin / 10.0) * power, 10.0 ** (margin / 10.0) * power
    a, step = 0.0, 1.0
    for _ in range(60):  # bisection on [0, 1]: a stays inside, a + step crosses first
        step *= 0.5
        trial = a + step
        if low <= power + 2.0 * trial * cross + trial * trial * change <= high:
            a = trial
    for _ in range(64):  # rounding: never trust, check (a -> 0 gives the reference, which holds)
        out = (r + a * d).astype(np.float32)
        if within_db(reference, out, db):
            return out
        a *= 0.5
    return np.asarray(reference, np.float32).copy()
