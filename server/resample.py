"""Rational-rate resampling with a causal polyphase FIR, offline and streaming alike.

The rate changes by ``up / down`` (the reduced fraction ``sr_out / sr_in``). Conceptually the
input is zero-stuffed by ``up``, low-passed by one windowed-sinc FIR and kept every ``down``-th
sample; the polyphase form only computes the kept samples. The filter is causal and its length
is chosen so that its group delay is a whole number of output samples: :attr:`Resampler.latency`.

Streaming keeps the last ``taps_per_phase - 1`` input samples, so feeding any split of a
signal through :meth:`Resampler.process` gives the same samples as :func:`resample`.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

ZEROS = 32
"""Sinc zero crossings on each side of the centre, counted at the lower of the two rates."""
ROLLOFF = 0.92
"""Cut-off as a fraction of the lower Nyquist; the transition band ends close to Nyquist."""
BETA = 8.6
"""Kaiser window shape: about 90 dB stop-band attenuation."""

_CHUNK = 8192
"""Outputs computed at once (at least 16 per phase), so memory stays bounded."""


def _ratio(sr_in: int, sr_out: int) -> tuple[int, int]:
    if int(sr_in) != sr_in or int(sr_out) != sr_out or sr_in <= 0 or sr_out <= 0:
        raise ValueError(f"sample rates must be positive integers, got {sr_in} and {sr_out}")
    g = math.gcd(int(sr_in), int(sr_out))
    return int(sr_out) // g, int(sr_in) // g


@lru_cache(maxsize=16)
def _design(up: int, down: int, zeros: int, rolloff: float, beta: float) -> tuple[np.ndarray, int]:
    """Polyphase filter bank ``(up, taps)`` reversed per phase, and the delay in output samples.

    The prototype has ``2 * delay * down + 1`` taps at the up-sampled rate, so its centre
    ``delay * down`` lands exactly on output sample ``delay``.
    """
    # Enough output samples of delay for `zeros` crossings at the lower rate.
    delay = math.ceil(zeros * max(up, down) / down)
    half = delay * down
    n = np.arange(2 * half + 1, dtype=np.float64) - half
    cutoff = rolloff / max(up, down)  # twice the cut-off in cycles per up-sampled sample
    h = up * cutoff * np.sinc(cutoff * n) * np.kaiser(2 * half + 1, beta)
    taps = math.ceil(h.shape[0] / up)
    h = np.concatenate([h, np.zeros(taps * up - h.shape[0])])
    # bank[p, t] = h[p + t*up] weighs x[q - t]; reversed so it meets a forward window of x.
    bank = np.ascontiguousarray(h.reshape(taps, up).T[:, ::-1])
    bank.setflags(write=False)
    return bank, delay


class Resampler:
    """Streaming resampler from ``sr_in`` to ``sr_out`` (mono); a :class:`~earsight.stage.Stage`.

    After ``n`` input samples in total it has produced ``ceil(n * up / down)`` output samples;
    output ``m`` depends on inputs up to ``floor(m * down / up)`` only (causal). An input
    impulse peaks ``latency`` output samples later.
    """

    def __init__(
        self,
        sr_in: int,
        sr_out: int,
        *,
        zeros: int = ZEROS,
        rolloff: float = ROLLOFF,
        beta: float = BETA,
    ) -> None:
        self.sr_in = int(sr_in)
        self.sr_out = int(sr_out)
        self.up, self.down = _ratio(sr_in, sr_out)
        self.identity = self.up == self.down
        if self.identity:
            self._bank = np.ones((1, 1))
            self.latency = 0
        else:
            self._bank, self.latency = _design(self.up, self.down, zeros, rolloff, beta)
        self.taps = self._bank.shape[1]
        self.reset()

    @property
    def rate_in(self) -> int:
        return self.sr_in

    @property
    def rate_out(self) -> int:
        return self.sr_out

    def reset(self) -> None:
        """Forget all input, as if the stream started from silence."""
        self._history = np.zeros(self.taps - 1, np.float64)
        self._n_in = 0
        self._n_out = 0

    def process(self, block: np.ndarray) -> np.ndarray:
        """``(n,)`` samples in at ``sr_in`` -> the output samples they complete at ``sr_out``.

        float64 input gives float64 output; anything else gives float32.
        """
        x = np.asarray(block).reshape(-1)
        dtype = np.float64 if x.dtype == np.float64 else np.float32
        if self.identity:
            self._n_in += x.shape[0]
            self._n_out = self._n_in
            return x.astype(dtype, copy=True)
        buf = np.concatenate([self._history, x.astype(np.float64, copy=False)])
        start = self._n_in
        self._n_in += x.shape[0]
        stop = -(-self._n_in * self.up // self.down)  # ceil: outputs whose last input has arrived
        if self.up == 1 and 0 < stop - self._n_out <= _CHUNK:
            # Decimation by a whole factor, a streaming block: output m reads the taps ending at
            # input m * down, so the windows are evenly strided -- one strided mat-vec, no index
            # arrays (this path is most of the resampler's cost at 256-sample blocks).
            first = self._n_out * self.down - start  # buf[first + taps - 1] is that input
            count = stop - self._n_out
            picked = as_strided(buf[first:], (count, self.taps), (self.down * buf.strides[0], buf.strides[0]))
            out = picked @ self._bank[0]
            self._n_out = stop
            self._history = buf[buf.shape[0] - (self.taps - 1) :].copy()
            return out.astype(dtype, copy=False)
        out = np.empty(stop - self._n_out, np.float64)
        # windows[s] = buf[s : s + taps], a view; buf is too short for it when nothing is due.
        windows = sliding_window_view(buf, self.taps) if out.shape[0] else buf[:0, None]
        chunk = max(_CHUNK, 16 * self.up)
        for c0 in range(0, out.shape[0], chunk):
            m = np.arange(self._n_out + c0, min(self._n_out + c0 + chunk, stop), dtype=np.int64)
            q = m * self.down // self.up  # newest input index each output needs
            rows = q - start  # buf[rows + taps - 1] is x[q], so windows[rows] ends at x[q]
            n = m.shape[0]
            if n >= 4 * self.up:
                # Long runs (offline): outputs j, j + up, j + 2*up ... share a phase and read
                # evenly strided windows, so each phase is one strided mat-vec without gathers.
                for j in range(min(self.up, n)):
                    r0, count = int(rows[j]), len(range(j, n, self.up))
                    phase = int(m[j] * self.down % self.up)
                    picked = windows[r0 : r0 + self.down * count : self.down]
                    out[c0 + j : c0 + n : self.up] = picked @ self._bank[phase]
            else:
                # Short blocks (streaming): gather each output's window and its phase's taps.
                phases = m * self.down % self.up
                out[c0 : c0 + n] = np.einsum("ij,ij->i", windows[rows], self._bank[phases])
        self._n_out = stop
        if self.taps > 1:
            self._history = buf[buf.shape[0] - (self.taps - 1) :].copy()
        return out.astype(dtype, copy=False)


def resample(
    x: np.ndarray,
    sr_in: int,
    sr_out: int,
    *,
    aligned: bool = False,
    zeros: int = ZEROS,
    rolloff: float = ROLLOFF,
    beta: float = BETA,
) -> np.ndarray:
    """Resample a whole mono signal ``(n,)`` -> ``(ceil(n * sr_out / sr_in),)``.

    By default the result is exactly what :class:`Resampler` streams: causal, delayed by its
    ``latency``. With ``aligned=True`` the delay is removed (the input is followed by silence
    to flush the filter), so output sample ``m`` sits at time ``m / sr_out`` like input sample
    ``m * sr_in / sr_out``; use it for offline work on files.
    """
    r = Resampler(sr_in, sr_out, zeros=zeros, rolloff=rolloff, beta=beta)
    x = np.asarray(x).reshape(-1)
    n_out = -(-x.shape[0] * r.up // r.down)
    if not aligned or r.latency == 0:
        return r.process(x)
    # Enough trailing silence to push the last `latency` outputs through.
    tail = np.zeros(-(-r.latency * r.down // r.up) + 1, x.dtype)
    y = np.concatenate([r.process(x), r.process(tail)])
    return y[r.latency : r.latency + n_out]
