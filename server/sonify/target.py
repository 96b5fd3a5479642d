"""Which neurons the sonifiers serve (:class:`Target`), and the ear's layer on them, differentiably.

A target is a layer, channels (empty: all), a time region and a position region, as fractions.
:func:`activations` runs the ear on a batch of signals and keeps only the frames of the time
region, asking the ear for a shortcut to the layer first (:meth:`Ear.upto
<earsight.ears.base.Ear.upto>`) so a shallow layer costs only its own blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ..ears.base import Ear, WindowedEar
from ..errors import BadRequest

if TYPE_CHECKING:
    from ..features import Selection


@dataclass(frozen=True)
class Target:
    """Which neurons: a layer, channels (empty: all), a time region and a position region (fractions)."""

    layer: str
    channels: tuple[int, ...] = ()
    time: tuple[float, float] = (0.0, 1.0)
    position: tuple[float, float] = (0.0, 1.0)


def check_target(ear: Ear, target: Target) -> Target:
    """Raise BadRequest (with a reason) for a layer, channel or region the ear does not have."""
    layer = ear.layer(target.layer)  # raises BadRequest for an unknown layer
    bad = [c for c in target.channels if not 0 <= c < layer.channels]
    if bad:
        raise BadRequest(f"layer {layer.name} has channels 0-{layer.channels - 1}; no channel {bad[0]}")
    for what, (a, b) in (("time region", target.time), ("position region", target.position)):
        if not (0.0 <= a < b <= 1.0):
            raise BadRequest(f"{what} must satisfy 0 <= start < end <= 1, got {a:g}..{b:g}")
    return target


def target_from(ear: Ear, values: dict[str, Any], selection: Selection | None = None) -> Target:
    """The target the parameters (and, where they are unset, the server's selection) name."""
    layer = str(values["layer"]) or (selection.layer if selection is not None else "")
    if not layer:
        layer = next((x.name for x in ear.layers if x.kind == "conv"), ear.layers[0].name)
    channel = int(values["channel"])
    channels: tuple[int, ...] = (channel,) if channel >= 0 else tuple(getattr(selection, "channels", ()) or ())
    if selection is not None and selection.layer != layer and channel < 0:
        channels = ()
    return check_target(
        ear,
        Target(
            layer, channels,
            (float(values["region_start"]), float(values["region_end"])),
            (float(values["position_start"]), float(values["position_end"])),
        ),
    )


def span(n: int, region: tuple[float, float]) -> slice:
    """Indices of a fractional region of ``n`` items (never empty)."""
    a = min(int(math.floor(region[0] * n)), n - 1)
    b = max(a + 1, int(math.ceil(region[1] * n)))
    return slice(a, min(b, n))


def layer_frames(ear: Ear, windows: torch.Tensor, layer: str) -> torch.Tensor:
    """A windowed ear's layer on a batch of windows: ``(n, ear.window)`` -> ``(n, *layer.shape)``."""
    assert isinstance(ear, WindowedEar)
    out = ear.upto(windows, layer)
    return out if out is not None else ear.frames(windows)[layer]


def activations(
    ear: Ear, audio: torch.Tensor, target: Target, *, frames: int | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The target layer on ``audio (batch, samples)`` -> ``(batch, k, *layer.shape)``, differentiably.

    ``k`` frames of the time region: all of them, or for an ear that hears in windows,
    ``frames`` drawn at random (without replacement) for a cheaper, stochastic step. Any other
    ear runs over the whole signal whatever it keeps, so it keeps every frame: a subset would
    only add noise (CPC dreams moved 15 of 36 battery units with every frame, 12 with 8).
    Frame ``j`` ends at sample ``(j + 1) * hop``.
    """
    batch, samples = audio.shape
    n = max(1, samples // ear.hop)
    region = span(n, target.time)
    index = torch.arange(region.start, region.stop)
    if isinstance(ear, WindowedEar) and frames is not None and frames < index.numel():
        index = index[torch.randperm(index.numel(), generator=generator)[:frames]].sort().values
    if isinstance(ear, WindowedEar):
        padded = F.pad(audio, (ear.window - ear.hop, 0))
        starts = index * ear.hop
        windows = torch.stack([padded[:, s : s + ear.window] for s in starts.tolist()], dim=1)  # (b, k, window)
        out = layer_frames(ear, windows.reshape(-1, ear.window), target.layer)
        return out.reshape(batch, index.numel(), *out.shape[1:])
    return ear.forward(audio)[target.layer][:, index]
