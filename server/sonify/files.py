"""Offline: a whole signal sonified at its own rate (:func:`sonify_file`). Used by the live
sonifier's renders and by the command line.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..ears.base import Ear
from ..errors import BadRequest
from ..resample import resample
from .deconv import Auralisation, auralise_with
from .dream import DreamResult, dream_with
from .dsp import soft_limit
from .spread import spread
from .target import target_from

if TYPE_CHECKING:
    from ..features import Selection


def sonify_file(
    ear: Ear, audio: np.ndarray, sample_rate: int, mode: str, values: dict[str, Any], selection: Selection | None = None,
    *, progress: bool = False,
) -> tuple[np.ndarray, DreamResult | Auralisation]:
    """Offline: ``audio (samples,)`` at ``sample_rate`` -> the sonification at the same rate, mixed by ``mix``.

    Dream adds the change, upsampled, to the original (the original keeps its highs); auralise
    resynthesises at the ear's rate and comes back to ``sample_rate``. ``progress``: the dream's bar.
    """
    if mode not in ("dream", "auralise"):
        raise BadRequest(f"mode must be dream or auralise, got {mode!r}")
    target = target_from(ear, values, selection)
    x = np.asarray(audio, np.float32).reshape(-1)
    at_ear = resample(x, sample_rate, ear.sample_rate, aligned=True).astype(np.float32)
    result: DreamResult | Auralisation
    if mode == "dream":
        dreamed = replace(dream_with(ear, at_ear, target, values, steps=int(values["iterations"]), progress=progress), spread=spread(ear, target))
        result = dreamed
        change = resample(dreamed.delta, ear.sample_rate, sample_rate, aligned=True)[: x.shape[0]]
        wet = x + np.pad(change, (0, x.shape[0] - change.shape[0])).astype(np.float32)
    else:
        result = auralise_with(ear, at_ear, target, values)
        back = resample(result.audio, ear.sample_rate, sample_rate, aligned=True)[: x.shape[0]]
        wet = np.pad(back, (0, x.shape[0] - back.shape[0])).astype(np.float32)
    mix = float(values["mix"])
    out = soft_limit((mix * wet + (1.0 - mix) * x).astype(np.float32))
    if not np.isfinite(out).all():
        raise BadRequest("the sonification was not finite (lower lr?)")
    return out, result
