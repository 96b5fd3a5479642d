"""The control surface: every ``/ear/sonify/<param>``, its type, range and doc, in one table.

Torch-free: the command table, the patch checks and ``earsight oscdoc`` read it without
loading a network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BadRequest

MODES = ("off", "dream", "auralise")
AUDIO_FORMATS = {".wav": "WAV", ".flac": "FLAC"}
"""The formats a render or an offline file can be written in, by suffix."""


@dataclass(frozen=True)
class Param:
    """One ``/ear/sonify/<name>`` parameter. ``type`` is an OSC type: "n" number, "i" int, "s" string."""

    name: str
    type: str
    default: float | int | str
    doc: str
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None

    def coerce(self, value: object) -> float | int | str:
        """Check one value against the table: raises BadRequest with a reason; returns it typed."""
        if self.type == "s":
            if not isinstance(value, str):
                raise BadRequest(f"{self.name} takes a string, got {value!r}")
            if self.choices is not None and value not in self.choices:
                raise BadRequest(f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}")
            return value
        # Pd sends every number as a float, Max whole numbers as ints: accept both.
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise BadRequest(f"{self.name} takes a number, got {value!r}")
        number = float(value)
        if not math.isfinite(number):
            raise BadRequest(f"{self.name} must be finite, got {number}")
        if self.type == "i":
            if number != round(number):
                raise BadRequest(f"{self.name} takes a whole number, got {number:g}")
            number = round(number)
        if self.range is not None and not self.range[0] <= number <= self.range[1]:
            raise BadRequest(f"{self.name} must be in [{self.range[0]:g}, {self.range[1]:g}], got {number:g}")
        return int(number) if self.type == "i" else number


PARAMS: tuple[Param, ...] = (
    Param("layer", "s", "", "layer to sonify; empty: the server's selection (/ear/select)"),
    Param("channel", "i", -1, "channel of that layer; -1: the selection's channels", (-1, 65535)),
    Param("lr", "n", 0.05, "dream step size (Adam's, on unit-scale coefficients; wave: x the input's RMS)", (0.0, 2.0)),
    Param("steps", "i", 2, "dream: gradient steps per live update", (1, 64)),
    Param("iterations", "i", 128, "dream: gradient steps for a render or an offline file", (1, 2000)),
    Param("frames", "i", 0, "dream: ear frames evaluated per step, drawn at random from the region; 0: as many as half a second of audio holds (CREPE 8, musicnn 1), more where the iterations would not read each frame about 5 times (a long file); an ear that hears the whole signal at once uses every frame", (0, 512)),
    Param("mix", "n", 1.0, "0 plays the input, 1 the sonification, between: both", (0.0, 1.0)),
    Param("strength", "n", 1.0, "dream: largest change allowed, as RMS of the change over RMS of the input (the output keeps the input's loudness)", (0.0, 8.0)),
    Param("param", "s", "auto", "dream: what is optimised: change (a change added to the input, as pink-weighted Fourier coefficients), wave (its samples) or spectrum (a gain per STFT bin); auto: change", None, ("auto", "change", "wave", "spectrum")),
    Param("window", "n", 0.3, "live: seconds of input each update looks at", (0.05, 4.0)),
    Param("chunk", "n", 0.2, "live: seconds between updates, and of new audio each update plays", (0.02, 1.0)),
    Param("queue", "n", 0.2, "live: output queued beyond one chunk, seconds: absorbs slow updates, adds latency", (0.0, 2.0)),
    Param("fade", "n", 0.02, "live: crossfade between consecutive versions, seconds", (0.002, 0.2)),
    Param("region_start", "n", 0.0, "time region of the objective: start, as a fraction of the window", (0.0, 1.0)),
    Param("region_end", "n", 1.0, "time region of the objective: end, as a fraction of the window", (0.0, 1.0)),
    Param("position_start", "n", 0.0, "frequency/position region of the layer's second axis: start (fraction)", (0.0, 1.0)),
    Param("position_end", "n", 1.0, "frequency/position region of the layer's second axis: end (fraction)", (0.0, 1.0)),
    Param("jitter", "n", 0.004, "dream: largest random time shift per step, seconds", (0.0, 0.1)),
    Param("time_mask", "n", 0.1, "dream: fraction of the window silenced at random per step", (0.0, 0.5)),
    Param("freq_mask", "n", 0.1, "dream: width of a random frequency band removed per step (fraction of the spectrum)", (0.0, 0.5)),
    Param("act_penalty", "n", 0.0, "dream: penalise the layer's other channels (selectivity)", (0.0, 10.0)),
    Param("noise_penalty", "n", 0.0, "dream: penalise the energy of the change", (0.0, 10.0)),
    Param("hf_penalty", "n", 0.0, "dream: penalise the change's high frequencies (its first difference)", (0.0, 10.0)),
    Param("stride", "i", 3, "auralise: ear frames between deconvolved frames (1: every frame, 3: a third of the work)", (1, 16)),
    Param("dry", "n", 1.0, "output level of the input passed through", (0.0, 4.0)),
    Param("wet", "n", 1.0, "output level of the sonification", (0.0, 4.0)),
)
"""Every ``/ear/sonify/<param>``: the OSC commands, the CLI options and the docs come from here."""

BY_NAME = {p.name: p for p in PARAMS}


def defaults() -> dict[str, Any]:
    return {p.name: p.default for p in PARAMS}
