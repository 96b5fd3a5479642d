"""How good a dream is, in numbers that mean the same for every unit of every ear.

- **rise**: the unit's mean activation after minus before, in spreads (:mod:`.spread`);
- **noise**: the rise that white noise of the change's energy, added to the input, gives;
- **loudness**: the output's RMS over the input's, dB;
- **jump**: the change's largest sample-to-sample step over the input's (above 1: a click);
- **median**: the median rise, in spreads, of the units of the chosen unit's layer (selective:
  the chosen unit rises at least twice as much);
- :func:`log_spectrum` and :func:`distinct`: two dreams differ when their changes' log-spectra
  correlate below 0.8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ears.base import Ear
from .change import largest_jump, loudness_db
from .spread import reference_frames
from .target import Target

DISTINCT = 0.8
"""Two dreams are distinct when their changes' log-spectra correlate below this."""


@dataclass(frozen=True)
class Verdict:
    rise: float
    """The unit's rise, in spreads."""
    noise: float
    """White noise of the change's energy: its rise, in spreads."""
    loudness: float
    """Output over input, dB."""
    jump: float
    """The change's largest jump over the input's."""
    median: float
    """The median rise of the layer's units, in spreads."""

    @property
    def moved(self) -> bool:
        """Rose at least 2 spreads, and 3 x what noise gives."""
        return self.rise >= 2.0 and self.rise >= 3.0 * max(self.noise, 0.0)

    @property
    def clean(self) -> bool:
        return abs(self.loudness) <= 3.0 and self.jump <= 1.0

    @property
    def selective(self) -> bool:
        return self.rise > 0 and self.rise >= 2.0 * self.median


def unit_means(ear: Ear, audio: np.ndarray, layer: str) -> np.ndarray:
    """Each channel's activation in ``layer``, averaged over frames and positions: ``(channels,)``."""
    ear.reset()
    frames = ear.analyse(audio)[layer]
    ear.reset()
    return frames.reshape(frames.shape[0], frames.shape[1], -1).mean(axis=(0, 2))


def layer_spreads(ear: Ear, layer: str) -> np.ndarray:
    """Each channel's spread on the reference audio: ``(channels,)``."""
    return reference_frames(ear)[layer].std(axis=0)


def judge(ear: Ear, audio: np.ndarray, dreamed: np.ndarray, target: Target, *, seed: int = 0) -> Verdict:
    """The verdict on one dream of ``target`` (one channel) from ``audio`` to ``dreamed`` (ear rate)."""
    (channel,) = target.channels
    spreads = np.maximum(layer_spreads(ear, target.layer), 1e-12)
    before = unit_means(ear, audio, target.layer)
    after = unit_means(ear, dreamed, target.layer)
    change = dreamed - audio
    size = float(np.sqrt(np.mean(np.square(change, dtype=np.float64))))
    noise = audio + size * np.random.default_rng(seed).standard_normal(audio.shape).astype(np.float32)
    noisy = unit_means(ear, noise, target.layer)
    rises = (after - before) / spreads
    live = np.flatnonzero(layer_spreads(ear, target.layer) > 1e-9)
    return Verdict(
        rise=float(rises[channel]),
        noise=float((noisy[channel] - before[channel]) / spreads[channel]),
        loudness=loudness_db(audio, dreamed),
        jump=largest_jump(change) / max(largest_jump(audio), 1e-12),
        median=float(np.median(rises[live])) if live.size else float("nan"),
    )


def log_spectrum(x: np.ndarray, n_fft: int = 1024) -> np.ndarray:
    """Welch's mean power per bin of Hann-windowed frames (hop n_fft / 2), in dB: ``(n_fft // 2 + 1,)``."""
    x = np.asarray(x, np.float64).reshape(-1)
    if x.size < n_fft:
        x = np.pad(x, (0, n_fft - x.size))
    idx = np.arange(n_fft)[None, :] + (n_fft // 2) * np.arange((x.size - n_fft) // (n_fft // 2) + 1)[:, None]
    power = np.mean(np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=-1)) ** 2, axis=0)
    return 10.0 * np.log10(power + 1e-20 * max(float(power.max()), 1e-30))


def correlation(a: np.ndarray, b: np.ndarray, *, detrend: bool = True) -> float:
    """How alike two changes sound: the correlation of their log-spectra (1: the same shape).

    ``detrend``: each log-spectrum less its straight-line fit over log frequency first, so a tilt
    every change shares (the parameterisation's pink prior, :mod:`.change`) does not count as
    likeness; what is left is where each change put its energy.
    """
    la, lb = log_spectrum(a)[1:], log_spectrum(b)[1:]
    if detrend:
        octave = np.log2(np.arange(1, la.size + 1))
        la = la - np.polyval(np.polyfit(octave, la, 1), octave)
        lb = lb - np.polyval(np.polyfit(octave, lb, 1), octave)
    return float(np.corrcoef(la, lb)[0, 1])


def peak_frequency(x: np.ndarray, sample_rate: int, n_fft: int = 4096, lowest: float = 30.0) -> float:
    """The strongest spectral peak of ``x``, Hz: the bin whose level stands furthest above the
    median of its surroundings (a third of an octave), refined by a parabola through its
    neighbours. Prominence, not level: a 1/f spectrum (pink noise) has no peak at its low end."""
    level = log_spectrum(x, n_fft)
    f = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    prominence = np.full(level.shape, -np.inf)
    for i in range(1, level.size - 1):
        if f[i] < lowest:
            continue
        lo, hi = np.searchsorted(f, f[i] * 2 ** (-1 / 6)), np.searchsorted(f, f[i] * 2 ** (1 / 6))
        around = np.concatenate([level[max(lo, 1) : max(i - 1, 1)], level[i + 2 : max(hi, i + 3)]])
        prominence[i] = level[i] - float(np.median(around)) if around.size else -np.inf
    i = int(np.argmax(prominence))
    a, b, c = level[i - 1], level[i], level[min(i + 1, level.size - 1)]
    bend = a - 2 * b + c
    offset = 0.5 * (a - c) / bend if bend < 0 else 0.0
    return float((i + offset) * sample_rate / n_fft)


def harmonic_pitch(x: np.ndarray, sample_rate: int, low: float = 30.0, high: float = 2100.0, n_fft: int = 4096) -> float:
    """The pitch a spectrum implies, Hz, by subharmonic summation (Hermes 1988): the f0, on a
    5-cent grid, whose first five harmonics stand furthest above their surroundings (weights
    0.84^(h-1)). Plain DSP, independent of any ear: a tone whose second harmonic is its
    strongest still has the pitch of its fundamental."""
    level = log_spectrum(x, n_fft)
    f = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    smooth = np.array([np.median(level[np.searchsorted(f, fi * 2 ** (-1 / 6)) : np.searchsorted(f, fi * 2 ** (1 / 6)) + 1])
                       for fi in f])
    prominence = np.maximum(level - smooth, 0.0)
    prominence[f < low] = 0.0
    candidates = low * 2.0 ** (np.arange(int(1200 * np.log2(high / low) / 5)) * 5 / 1200)
    score = np.zeros(candidates.size)
    for h in range(1, 6):
        score += 0.84 ** (h - 1) * np.interp(h * candidates, f, prominence, right=0.0)
    return float(candidates[int(np.argmax(score))])


def _magnitudes(x: np.ndarray, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    from .dsp import stft_frames

    return np.abs(stft_frames(np.asarray(x, np.float32).reshape(-1), n_fft, hop))


def spectral_flux(x: np.ndarray) -> float:
    """How much the spectrum changes from frame to frame (onsets, hits): the mean rise of each
    bin's magnitude, over the mean magnitude (so loudness alone does not count)."""
    m = _magnitudes(x)
    return float(np.maximum(np.diff(m, axis=0), 0.0).mean() / max(float(m.mean()), 1e-20))


def harmonic_fraction(x: np.ndarray, width: int = 17) -> float:
    """The share of energy that is steady in frequency over time (harmonic, as in median-filter
    HPSS, Fitzgerald 2010): the time-median-filtered spectrogram's energy over the total."""
    from scipy.ndimage import median_filter

    m = _magnitudes(x)
    steady = median_filter(m, size=(width, 1), mode="nearest")
    percussive = median_filter(m, size=(1, width), mode="nearest")
    h = steady**2 / np.maximum(steady**2 + percussive**2, 1e-30)
    return float(np.sum(h * m**2) / max(float(np.sum(m**2)), 1e-30))
