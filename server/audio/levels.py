"""Block-rate features of the input: level, onsets, an envelope. Pure numpy, no torch.

They run inside the audio process, once per audio block, the moment the block is computed, so
the streams they feed never wait for the ear. Each is a pure function of a block plus a small
state carried between blocks (:class:`Onsets`, :class:`Envelope`), so a whole recording cut
into blocks gives the same answer as the stream did (tested).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

VALUES = {"level": ("rms", "peak"), "onset": ("strength", "age"), "envelope": ("value",)}
"""Block-rate streams and the names of their values (``flat``: ``/ear/<stream>/<name>``)."""
FLOOR_DB = -70.0
"""Blocks quieter than this never start an onset (noise in silence)."""


def level(block: np.ndarray) -> tuple[float, float]:
    """RMS and peak (linear) of a block of samples."""
    if block.size == 0:
        return 0.0, 0.0
    x = block.astype(np.float64, copy=False)
    return float(np.sqrt(np.mean(x * x))), float(np.max(np.abs(x)))


def energy_db(block: np.ndarray) -> float:
    """Mean power of a block in dB (full-scale sine: -3 dB)."""
    x = block.astype(np.float64, copy=False)
    return 10.0 * math.log10(float(np.mean(x * x)) + 1e-12)


def attack_index(block: np.ndarray) -> int:
    """Where in the block the attack is: the first sample reaching half the block's peak."""
    a = np.abs(block)
    return int(np.argmax(a >= 0.5 * a.max())) if a.size and a.max() > 0 else 0


@dataclass
class Onset:
    strength: float
    """dB above the recent level."""
    offset: int
    """Sample of the attack within the block."""


class Onsets:
    """An energy-rise detector: a block whose power rises ``threshold`` dB above the recent level.

    The recent level follows the block power with a time constant of ``memory`` seconds (never
    below :data:`FLOOR_DB`), and jumps to the level of an onset, so a steady tone or noise fires
    once when it starts, and a click after silence or a note after a pause fires. After an onset,
    none for ``refractory`` seconds (a note's own decay must not fire it again).
    """

    def __init__(self, sample_rate: int, block: int, threshold: float = 9.0, memory: float = 0.05,
                 refractory: float = 0.05) -> None:
        self.threshold = threshold
        self.block = block
        self._alpha = 1.0 - math.exp(-block / (memory * sample_rate))
        self._refractory = int(math.ceil(refractory * sample_rate / block))
        self._recent = FLOOR_DB
        self._quiet_for = self._refractory

    def step(self, block: np.ndarray) -> Onset | None:
        db = energy_db(block)
        rise = db - self._recent
        self._recent = max(FLOOR_DB, self._recent + self._alpha * (db - self._recent))
        self._quiet_for += 1
        if rise >= self.threshold and db > FLOOR_DB and self._quiet_for > self._refractory:
            self._quiet_for = 0
            self._recent = db
            return Onset(rise, attack_index(block))
        return None


class Envelope:
    """A peak follower with separate attack and release times, stepped once per block."""

    def __init__(self, sample_rate: int, block: int, attack: float = 0.005, release: float = 0.15) -> None:
        self._up = 1.0 - math.exp(-block / (attack * sample_rate))
        self._down = 1.0 - math.exp(-block / (release * sample_rate))
        self.value = 0.0

    def step(self, block: np.ndarray) -> float:
        peak = float(np.max(np.abs(block))) if block.size else 0.0
        coeff = self._up if peak > self.value else self._down
        self.value += coeff * (peak - self.value)
        return self.value


def onsets_offline(x: np.ndarray, sample_rate: int, block: int, threshold: float = 9.0) -> list[tuple[int, float]]:
    """Every onset of a recording as (sample, strength): the stream's answer, cut into the same blocks."""
    detector = Onsets(sample_rate, block, threshold)
    found = []
    for start in range(0, len(x) - block + 1, block):
        onset = detector.step(x[start : start + block])
        if onset is not None:
            found.append((start + onset.offset, onset.strength))
    return found
