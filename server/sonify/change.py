"""The change a dream adds, parameterised in frequency, and shaped so it cannot be loud or click.

:class:`ChangeParam` is Lucent's FFT parameterisation in one dimension: the change is the inverse
real FFT of complex coefficients, each weighted by a pink (``f^-alpha``) prior. Adam on
unit-scale coefficients takes per-frequency steps (the optimiser adapts to each unit's gradient
scale, so every unit moves at one learning rate), while the prior keeps what it adds from being
white hiss: the change's energy goes where the unit's gradient points, tilted like music.

:func:`shape` is applied on every step (so the ascent sees it, and spends its budget inside it)
and to the result, and holds by construction:

- the output is no louder than the input (the loudness budget: energy is redistributed, not
  added; a unit cannot be raised by loudness alone);
- the change's largest sample-to-sample jump is at most the input's (no clicks), by scaling it;
- the change's RMS is at most ``strength`` x the input's.
"""

from __future__ import annotations

import math

import numpy as np
import torch

ALPHA = 0.5
"""The prior's tilt: power falls as 1/f (pink), amplitude as f^-0.5. White (0) hisses on CREPE;
steeper starves the mel ears' upper bands."""
FLOOR_HZ = 150.0
"""Below this the prior falls off, as a second-order high-pass: the change adds no rumble. Rumble is
not heard as a dream, yet costs the jump budget nothing, and an ear that normalises each frame
(CREPE) takes it as a level knob for everything else: dreams of CREPE's 883 Hz and 1766 Hz bins
on pink noise spent their budget below 100 Hz and put their strongest peak near 600 Hz."""


def prior(samples: int, sample_rate: int, alpha: float = ALPHA) -> torch.Tensor:
    """Weights of the rfft bins ``(samples // 2 + 1,)``: unit-variance coefficients give a change of RMS 1."""
    f = torch.fft.rfftfreq(samples, 1.0 / sample_rate)
    w = (f / FLOOR_HZ).pow(2).clamp_max(1.0) / f.clamp_min(FLOOR_HZ).pow(alpha)
    w[0] = 0.0  # no DC: it is silent and costs headroom
    # Parseval for irfft: RMS^2 = 2 sum |W c|^2 / n^2 for unit-variance complex c (real and imag each 1/2).
    return w / torch.sqrt(2.0 * (w**2).sum() / samples**2).clamp_min(1e-20)


class ChangeParam(torch.nn.Module):
    """The change as ``irfft(coefficients x prior) x rms``: ``forward() -> (1, samples)``, unshaped."""

    weights: torch.Tensor

    def __init__(self, samples: int, sample_rate: int, rms: float, start: np.ndarray | None = None) -> None:
        super().__init__()
        self.samples, self.rms = samples, rms
        self.register_buffer("weights", prior(samples, sample_rate))
        bins = samples // 2 + 1
        re, im = torch.zeros(bins), torch.zeros(bins)
        if start is not None:  # a warm start (live: the previous change, shifted): invert the map
            spec = torch.fft.rfft(torch.from_numpy(np.asarray(start, np.float32)).reshape(-1)[:samples], n=samples)
            spec = spec / (self.weights.clamp_min(1e-12) * rms)
            spec[self.weights == 0] = 0.0
            re, im = spec.real.float(), spec.imag.float()
        self.re = torch.nn.Parameter(re)
        self.im = torch.nn.Parameter(im)

    def forward(self) -> torch.Tensor:
        coefficients = torch.complex(self.re, self.im) * self.weights
        return (torch.fft.irfft(coefficients, n=self.samples) * self.rms).reshape(1, -1)


def carry(previous: np.ndarray, shift: int, length: int, fade: int = 64) -> np.ndarray:
    """A live dream's warm start: ``previous`` moved ``shift`` samples into the past, and the
    newly arrived end filled with its own last ``shift`` samples once more, ``(length,)``.

    Zeros there would give new audio only the few steps of one update (a live rise of 0.14
    spreads where 64 steps offline give 4); a unit that wants a texture wants it next chunk too,
    so the continued change starts where the last left off and the steps refine it. Over the
    ``fade`` samples before the joint the moved past crossfades into what preceded the repeated
    part, so the joint is not a step (the dream's shaping bounds every jump in any case).
    """
    prev = np.asarray(previous, np.float32).reshape(-1)
    n = prev.shape[0]
    out = np.zeros(length, np.float32)
    keep = min(max(n - shift, 0), length)
    out[:keep] = prev[shift : shift + keep]
    if 0 < keep < length and 0 < shift <= n:
        out[keep:] = np.resize(prev[n - shift :], length - keep)  # repeats when more arrived than there was
        f = min(fade, keep, n - shift)
        if f > 0 and keep == n - shift:  # the moved past ends where the repeated part began
            w = (0.5 - 0.5 * np.cos(np.pi * np.arange(1, f + 1) / (f + 1))).astype(np.float32)
            out[keep - f : keep] = (1.0 - w) * out[keep - f : keep] + w * prev[n - shift - f : n - shift]
    return out


def largest_jump(x: torch.Tensor | np.ndarray) -> float:
    """The largest sample-to-sample step of a signal: what a click is."""
    a = np.asarray(x.detach() if isinstance(x, torch.Tensor) else x, np.float64).reshape(-1)
    return float(np.abs(np.diff(a)).max(initial=0.0))


def shape(x0: torch.Tensor, change: torch.Tensor, *, strength: float, jump: float) -> torch.Tensor:
    """``x0 + change`` at the input's loudness, its change no larger than ``strength`` x the
    input's RMS and with no jump above ``jump``: ``(1, samples)``, differentiable.

    Each bound is a scaling of the change (or of the whole signal) by at most one: loudness first
    (a global gain g on ``x0 + change``: the change becomes ``(g - 1) x0 + g change``), then size
    and jump, each scaling that change toward zero, which cannot undo the ones before. Scaling
    moves the output between the input and a signal of the input's loudness, so it can only get
    quieter (never louder than the input); how much quieter :func:`~.dream.dream` bounds at the
    end (:func:`~.dsp.bound_loudness`, within ``LOUDNESS_DB``).
    """
    rms = x0.pow(2).mean().sqrt().clamp_min(1e-12)
    y = x0 + change
    y = y * (rms / y.pow(2).mean().sqrt().clamp_min(1e-12))
    c = y - x0
    size = (c.pow(2).mean() + 1e-30).sqrt()
    limit = strength * rms
    c = c * (limit / torch.maximum(size, limit))
    if jump > 0:
        steps = c.diff(dim=-1).abs()
        # The hard maximum scales; a soft one (an 8-norm) carries the gradient, so the ascent
        # learns to keep every step small rather than hearing of one sample only.
        soft = ((steps / jump).pow(8).mean() + 1e-20).pow(0.125) * jump
        largest = soft + (steps.max() - soft).detach()
        c = c * (jump / torch.maximum(largest, torch.tensor(jump)))
    return x0 + c


def loudness_db(reference: np.ndarray, signal: np.ndarray) -> float:
    """``signal``'s RMS over ``reference``'s, in dB (float64 sums)."""
    ref = float(np.mean(np.square(reference, dtype=np.float64)))
    power = float(np.mean(np.square(signal, dtype=np.float64)))
    return 10.0 * math.log10(max(power, 1e-30) / max(ref, 1e-30))
