"""How a neuron's activation becomes light: pure numpy, no GL.

Two modes:

- ``change`` (the default): each neuron shows how far it is from its own running level, in
  units of its own running spread (:class:`RunningNorm`). The level follows with the time
  constant ``tau``; the spread follows :data:`SPREAD_TAUS` times slower and learns only from
  deviations clipped to :data:`CLIP` spreads, so one big change (silence to music) does not
  blind a neuron to the next ones (the drum hits in that music). A steady input goes dark
  whatever its loudness; sound lights what responds to it; a change lights what changed. The
  spread never falls below a floor (a fraction of the layer's calibrated range), so the tiny
  wobbles of a near-constant input stay dark.
- ``raw``: each layer is scaled by an envelope of its own range, so a neuron shows its level.

Then :func:`smooth` lets the light rise fast and fade with the ``decay`` time constant.
Time constants are in seconds of the frames' own clock (``dt`` per update), so a live picture
and an offline video of the same sound show the same thing.
"""

from __future__ import annotations

import numpy as np

MODES = ("change", "raw")
FULL_SCALE = 3.0
"""Spreads of deviation that light a neuron fully (at gain 1)."""
SPREAD_FLOOR = 0.02
"""A neuron's spread is at least this fraction of its layer's calibrated range."""
SPREAD_TAUS = 10.0
"""The spread's time constant, in units of the level's."""
CLIP = 3.0
"""Deviations beyond this many spreads teach the spread only this much."""
ATTACK = 0.02
"""Seconds: the light's rise time constant (fast, so onsets show at once)."""


def ew_alpha(dt: float, tau: float) -> float:
    """The weight of a new sample in an exponentially weighted average with time constant ``tau``.

    Exact for any ``dt``: n updates of dt move as far as one of n*dt (so the frame rate does not
    change how fast the picture adapts). ``tau`` 0 follows instantly.
    """
    if dt <= 0.0:
        return 0.0
    if tau <= 0.0:
        return 1.0
    return float(-np.expm1(-dt / tau))


class RunningNorm:
    """Per-neuron running level and spread; :meth:`__call__` returns each neuron's deviation in spreads.

    ``floor`` (n,): the least spread of each neuron (same units as its activation).
    """

    def __init__(self, floor: np.ndarray) -> None:
        self.floor = np.maximum(np.asarray(floor, np.float32), 1e-12)
        n = self.floor.shape[0]
        self.level = np.zeros(n, np.float32)
        """(n,) each neuron's running mean."""
        self.var = np.zeros(n, np.float32)
        """(n,) each neuron's running variance around that mean."""
        self.seen = np.zeros(n, bool)

    def reset(self) -> None:
        self.seen[:] = False

    def __call__(self, x: np.ndarray, dt: float, tau: float, sl: slice = slice(None)) -> np.ndarray:
        """Deviation of ``x`` (the neurons ``sl``) from their running level, in spreads, before
        ``x`` joins the level; then the level and spread take ``x`` in with weight ``ew_alpha(dt, tau)``.

        A neuron seen for the first time starts at its level: deviation 0.
        """
        level, var, seen = self.level[sl], self.var[sl], self.seen[sl]
        fresh = ~seen
        if fresh.any():
            level[fresh] = x[fresh]
            var[fresh] = 0.0
            seen[fresh] = True
        dev = x - level
        z = dev / (np.sqrt(var) + self.floor[sl])
        a = ew_alpha(dt, tau)
        if a > 0.0:
            level += a * dev
            b = ew_alpha(dt, SPREAD_TAUS * tau)
            bound = CLIP * (np.sqrt(var) + self.floor[sl])
            clipped = np.clip(dev, -bound, bound)
            var[:] = (1.0 - b) * (var + b * clipped * clipped)
        return z.astype(np.float32, copy=False)


def light(z: np.ndarray, gain: float) -> np.ndarray:
    """Deviations in spreads -> light in [0, 1]: a rise and a fall alike, full at FULL_SCALE / gain."""
    return np.clip(np.abs(z) * (gain / FULL_SCALE), 0.0, 1.0).astype(np.float32, copy=False)


def smooth(shown: np.ndarray, target: np.ndarray, dt: float, decay: float) -> None:
    """Move ``shown`` towards ``target`` in place: up with :data:`ATTACK`, down with ``decay`` (seconds)."""
    up, down = ew_alpha(dt, ATTACK), ew_alpha(dt, decay)
    shown += (target - shown) * np.where(target > shown, up, down).astype(np.float32)
