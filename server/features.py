"""Features: pure functions from one activation frame (and its audio) to the values streams send.

Each stream of :data:`STREAMS` names its values (for the ``flat`` OSC format, where each value
gets an address) and computes them from a :class:`FrameContext`. Nothing here keeps state.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .audio.levels import VALUES as BLOCK_VALUES
from .ears.base import Ear
from .errors import BadRequest


@dataclass(frozen=True)
class Selection:
    """Chosen neurons: channels of one layer (all channels when ``channels`` is empty)."""

    layer: str
    channels: tuple[int, ...] = ()


@dataclass
class FrameContext:
    """Everything a stream may read for one frame."""

    ear: Ear
    frame: dict[str, np.ndarray]
    """Layer -> activations of this frame, shape ``layer.shape``."""
    audio: np.ndarray
    """The hop of audio (at the ear's rate) that completed this frame."""
    time: float
    """Wall-clock time (s, epoch) at which the frame's last sample entered the server."""
    selection: Selection
    top: tuple[int, float] = (5, 0.1)
    """``top`` stream: at most P labels, each above the threshold."""
    embed: Embedding | None = None
    cache: dict[str, object] = field(default_factory=dict)


def safe_name(text: str) -> str:
    """A string usable as one OSC address part (TouchDesigner turns addresses into channel names)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"


# ---------------------------------------------------------------- pure functions


def layer_energy(frame: dict[str, np.ndarray], layers: Sequence[str]) -> np.ndarray:
    """Root mean square of each layer's activations: ``(len(layers),)``."""
    return np.array([np.sqrt(np.mean(np.square(frame[name], dtype=np.float64))) for name in layers], np.float32)


def channel_activation(values: np.ndarray, channels: Sequence[int]) -> np.ndarray:
    """Mean activation of each chosen channel; ``values`` is one frame of a layer, ``(channels, ...)``."""
    per_channel = values.reshape(values.shape[0], -1).mean(axis=1)
    return per_channel[list(channels)] if len(channels) else per_channel


def top_labels(probs: np.ndarray, count: int, threshold: float) -> list[int]:
    """Indices of at most ``count`` labels whose probability is at least ``threshold``, most probable first.

    The selection function of the audio-visual hallucinations seed.
    """
    order = np.argsort(-probs, kind="stable")[: max(0, count)]
    return [int(i) for i in order if probs[i] >= threshold]


@dataclass(frozen=True)
class Embedding:
    """A low-dimensional code of one layer (after Deep Audio Visualization): PCA, scaled to 0-1.

    ``lo`` and ``hi`` are the 1st and 99th percentiles of each component on the fitting data, so
    a VJ can map the values straight onto parameters.
    """

    layer: str
    mean: np.ndarray  # (units,)
    components: np.ndarray  # (dims, units)
    lo: np.ndarray  # (dims,)
    hi: np.ndarray  # (dims,)

    @property
    def dims(self) -> int:
        return int(self.components.shape[0])

    def __call__(self, frame: dict[str, np.ndarray]) -> np.ndarray:
        return self.transform(frame[self.layer].reshape(1, -1))[0]

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``(n, units)`` -> ``(n, dims)`` in [0, 1]."""
        z = (x.reshape(x.shape[0], -1) - self.mean) @ self.components.T
        return np.clip((z - self.lo) / np.maximum(self.hi - self.lo, 1e-9), 0.0, 1.0).astype(np.float32)


def fit_embedding(layer: str, x: np.ndarray, dims: int = 10) -> Embedding:
    """PCA of ``x`` (``(n_frames, *shape)``) keeping ``dims`` components."""
    x = x.reshape(x.shape[0], -1).astype(np.float64)
    if x.shape[0] < 2:
        raise BadRequest("need at least two frames to fit an embedding")
    dims = min(dims, x.shape[0], x.shape[1])
    mean = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    components = vt[:dims]
    z = (x - mean) @ components.T
    return Embedding(layer, mean, components, np.percentile(z, 1, axis=0), np.percentile(z, 99, axis=0))


# ---------------------------------------------------------------- streams


@dataclass(frozen=True)
class StreamSpec:
    name: str
    doc: str
    names: Callable[[Ear, Selection], list[str]]
    """The value names (one OSC address each in the ``flat`` format)."""
    compute: Callable[[FrameContext], np.ndarray]
    check: Callable[[Ear], str | None] = lambda ear: None
    """Why this ear cannot give the stream, or None."""
    block: bool = False
    """Computed per audio block in the audio process (:mod:`earsight.audio.blockstreams`), not per ear frame."""
    clock: bool = False
    """Ticked by the Link clock (:mod:`earsight.link`) at up to :data:`CLOCK_RATE`, not per ear frame."""


CLOCK_RATE = 100.0
"""Ticks per second of the clock streams."""


def _in_the_audio_process(ctx: FrameContext) -> np.ndarray:
    raise AssertionError("block-rate streams are computed in the audio process")


def _on_the_clock(ctx: FrameContext) -> np.ndarray:
    raise AssertionError("clock streams are ticked by the Link clock")


def _act_names(ear: Ear, sel: Selection) -> list[str]:
    channels = sel.channels or tuple(range(ear.layer(sel.layer).channels))
    return [f"{sel.layer}_{c}" for c in channels]


def _act(ctx: FrameContext) -> np.ndarray:
    return channel_activation(ctx.frame[ctx.selection.layer], ctx.selection.channels)


def _layers(ctx: FrameContext) -> np.ndarray:
    return layer_energy(ctx.frame, ctx.ear.layer_names)


def _pitch_check(ear: Ear) -> str | None:
    return None if ear.pitch_layer else f"ear {ear.name!r} does not hear pitch (try /ear/model/load crepe)"


def _pitch(ctx: FrameContext) -> np.ndarray:
    layer = ctx.ear.pitch_layer
    heard = ctx.ear.pitch({layer: ctx.frame[layer][None]}) if layer else None
    if heard is None:
        raise BadRequest(f"ear {ctx.ear.name!r} does not hear pitch")
    hz, confidence = heard
    return np.array([hz[0], confidence[0]], np.float32)


def _tags_check(ear: Ear) -> str | None:
    return None if ear.labels else f"ear {ear.name!r} has no labels (try /ear/model/load musicnn)"


def _tags(ctx: FrameContext) -> np.ndarray:
    assert ctx.ear.output_layer is not None
    return np.asarray(ctx.frame[ctx.ear.output_layer], np.float32).reshape(-1)


def _top(ctx: FrameContext) -> np.ndarray:
    probs = _tags(ctx)
    out = np.zeros_like(probs)
    chosen = top_labels(probs, *ctx.top)
    out[chosen] = probs[chosen]
    return out


def _embed(ctx: FrameContext) -> np.ndarray:
    if ctx.embed is None:
        raise BadRequest("no embedding fitted yet: send /ear/embed/fit first")
    return ctx.embed(ctx.frame)


def _embed_names(ear: Ear, sel: Selection) -> list[str]:
    return [f"e{i}" for i in range(MAX_EMBED_DIMS)]  # the fitted embedding uses the first dims


MAX_EMBED_DIMS = 32


STREAMS: dict[str, StreamSpec] = {
    s.name: s
    for s in (
        StreamSpec("act", "mean activation of each selected channel (see /ear/select)", _act_names, _act),
        StreamSpec("layers", "energy (RMS) of every layer", lambda ear, sel: [safe_name(n) for n in ear.layer_names], _layers),
        StreamSpec("pitch", "pitch in Hz and its confidence (0-1)", lambda ear, sel: ["hz", "confidence"], _pitch, _pitch_check),
        StreamSpec("level", "input RMS and peak (linear) since the last message; per audio block, sent the moment the block is computed",
                   lambda ear, sel: list(BLOCK_VALUES["level"]), _in_the_audio_process, block=True),
        StreamSpec("onset", "an attack: strength (dB above the recent level) and age (s from the attack to the send); "
                   "sent when one happens, the rate caps how often (threshold: /ear/onset/threshold; bundles carry the attack's time)",
                   lambda ear, sel: list(BLOCK_VALUES["onset"]), _in_the_audio_process, block=True),
        StreamSpec("envelope", "the input's peak envelope (attack 5 ms, release 150 ms), per audio block",
                   lambda ear, sel: list(BLOCK_VALUES["envelope"]), _in_the_audio_process, block=True),
        StreamSpec("tags", "probability of every label", lambda ear, sel: [safe_name(t) for t in ear.labels or ()], _tags, _tags_check),
        StreamSpec(
            "top",
            "the most probable labels (see /ear/top): probability where chosen, else 0",
            lambda ear, sel: [safe_name(t) for t in ear.labels or ()],
            _top,
            _tags_check,
        ),
        StreamSpec("embed", "low-dimensional code of a layer, 0-1 (see /ear/embed/fit)", _embed_names, _embed),
        StreamSpec("beat", "the Link session's beat (counting from when the session began), phase in the bar "
                   "(0 to the quantum) and tempo (BPM); up to 100 a second while /ear/link is on",
                   lambda ear, sel: ["beat", "phase", "tempo"], _on_the_clock, clock=True),
    )
}
