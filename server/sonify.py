"""Hearing what the ear hears: *dream* (input optimisation) and *auralise* (deconvolution).

dream (Immersions): gradient ascent on the input audio so that chosen neurons respond more. It is
written the way lucent writes feature visualisation, as three small nouns composed by one function:

- an **objective** (:func:`objective`): activations -> a number to raise (the selected channels'
  mean over a time and position region, minus penalties);
- a **parameterisation** (:class:`WaveParam`, :class:`SpectrumParam`): what is optimised (a change
  added to the waveform, or a log-gain per STFT bin resynthesised with the input's phase);
- **transforms** (:func:`jitter`, :func:`time_mask`, :func:`freq_mask`, :func:`compose`): random
  augmentations applied before the ear looks, so the ascent finds sounds and not adversarial
  noise that works at one exact alignment;

and :func:`dream` composes them. Regularisers: ``noise_penalty`` (energy of the change),
``hf_penalty`` (energy of the change's first difference: high frequencies), ``act_penalty`` (the
layer's other channels, for selectivity). The change is projected after every step: its RMS is
at most ``strength`` times the input's, and samples stay within [-1, 1].

auralise (Choi et al., ISMIR 2015): the deconvnet runs one feature map back to the input through
the network's own backward pass with one change, a ReLU whose backward is ``relu(grad)``
(:class:`DeconvMode`); max-pooling's backward already routes through the forward pass's switches
and a convolution's backward is the transposed convolution. The seed is the feature map above its
resting level (its minimum over the signal: a feature that never fires seeds nothing). What we
take as the time-frequency picture (:func:`auralise`):

- an ear that looks at the waveform (CREPE): each window's reconstructed *signal*; the mask is its
  STFT magnitude (Hann, ``n_fft`` = 1024 = CREPE's window, one STFT frame per ear frame);
- an ear with an FFT front end (musicnn, CPC): the backward pass crosses the log unchanged (the log
  belongs to the front end that makes the network's input, not to the network), so the
  reconstruction's spectrum is ``|X| * mask`` and the mask is that divided by ``|X|``.

The mask is scaled to [0, 1] and applied to the input's STFT; the output keeps the input's phase
(weighted overlap-add).

Live, :class:`Sonifier` runs a thread in the server: every ``chunk`` seconds it takes the newest
``window`` seconds of input (``engine.recent``), dreams or auralises it at the ear's rate, and
plays the newest ``chunk`` of the result into ``engine.audio.output``, crossfaded with the previous
version over ``fade`` seconds. Consecutive versions are nearly the same signal (correlated), so
the crossfade is a raised-cosine one whose gains sum to 1 (equal-gain), not equal-power (which
would swell by up to 3 dB). Every chunk is checked for finiteness and soft-limited before it
leaves.
"""

from __future__ import annotations

import argparse
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from .ears.base import Ear, WindowedEar
from .errors import BadRequest, NotFound
from .resample import resample

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger(__name__)

MODES = ("off", "dream", "auralise")
AUDIO_FORMATS = {".wav": "WAV", ".flac": "FLAC"}


# ================================================================= the control surface


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
    Param("lr", "n", 0.25, "dream step size: each step changes the audio by lr x its RMS", (0.0, 2.0)),
    Param("steps", "i", 2, "dream: gradient steps per live update", (1, 64)),
    Param("iterations", "i", 24, "dream: gradient steps for a render or an offline file", (1, 2000)),
    Param("frames", "i", 4, "dream: ear frames evaluated per step, drawn at random from the region", (1, 512)),
    Param("mix", "n", 1.0, "0 plays the input, 1 the sonification, between: both", (0.0, 1.0)),
    Param("strength", "n", 1.0, "dream: largest change allowed, as RMS of the change over RMS of the input", (0.0, 8.0)),
    Param("param", "s", "auto", "dream: optimise the waveform or a gain per STFT bin (with resynthesis); auto: spectrum for ears with an FFT front end, else wave", None, ("auto", "wave", "spectrum")),
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
    Param("noise_penalty", "n", 0.05, "dream: penalise the energy of the change", (0.0, 10.0)),
    Param("hf_penalty", "n", 0.2, "dream: penalise the change's high frequencies (its first difference)", (0.0, 10.0)),
    Param("stride", "i", 3, "auralise: ear frames between deconvolved frames (1: every frame, 3: a third of the work)", (1, 16)),
    Param("dry", "n", 1.0, "output level of the input passed through", (0.0, 4.0)),
    Param("wet", "n", 1.0, "output level of the sonification", (0.0, 4.0)),
)
"""Every ``/ear/sonify/<param>``: the OSC commands, the CLI options and the docs come from here."""

BY_NAME = {p.name: p for p in PARAMS}


def defaults() -> dict[str, Any]:
    return {p.name: p.default for p in PARAMS}


# ================================================================= selection


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


def _span(n: int, region: tuple[float, float]) -> slice:
    """Indices of a fractional region of ``n`` items (never empty)."""
    a = min(int(math.floor(region[0] * n)), n - 1)
    b = max(a + 1, int(math.ceil(region[1] * n)))
    return slice(a, min(b, n))


# ================================================================= the ear, differentiably


def _crepe_upto(ear: Ear, windows: torch.Tensor, layer: str) -> torch.Tensor | None:
    """CREPE's blocks up to ``layer`` only (the rest would be wasted work): ``(n, 1024)`` -> ``(n, *shape)``."""
    from .ears.crepe import Crepe, normalise

    if not isinstance(ear, Crepe) or layer not in ear.net.blocks:
        return None
    x = normalise(windows)[:, None, :]
    for name, block in ear.net.blocks.items():
        x = block(x)
        if name == layer:
            return x
    return None


def layer_frames(ear: Ear, windows: torch.Tensor, layer: str) -> torch.Tensor:
    """A windowed ear's layer on a batch of windows: ``(n, ear.window)`` -> ``(n, *layer.shape)``."""
    assert isinstance(ear, WindowedEar)
    out = _crepe_upto(ear, windows, layer)
    return out if out is not None else ear.frames(windows)[layer]


def activations(
    ear: Ear, audio: torch.Tensor, target: Target, *, frames: int | None = None, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The target layer on ``audio (batch, samples)`` -> ``(batch, k, *layer.shape)``, differentiably.

    ``k`` frames of the time region: all of them, or ``frames`` drawn at random (without
    replacement) for a cheaper, stochastic step. Frame ``j`` ends at sample ``(j + 1) * hop``.
    """
    batch, samples = audio.shape
    n = max(1, samples // ear.hop)
    span = _span(n, target.time)
    index = torch.arange(span.start, span.stop)
    if frames is not None and frames < index.numel():
        index = index[torch.randperm(index.numel(), generator=generator)[:frames]].sort().values
    if isinstance(ear, WindowedEar):
        padded = F.pad(audio, (ear.window - ear.hop, 0))
        starts = index * ear.hop
        windows = torch.stack([padded[:, s : s + ear.window] for s in starts.tolist()], dim=1)  # (b, k, window)
        out = layer_frames(ear, windows.reshape(-1, ear.window), target.layer)
        return out.reshape(batch, index.numel(), *out.shape[1:])
    return ear.forward(audio)[target.layer][:, index]


# ================================================================= the three nouns


Objective = Callable[[torch.Tensor], torch.Tensor]
"""Activations ``(batch, k, channels, *rest)`` -> a scalar to raise."""


def objective(target: Target, *, act_penalty: float = 0.0) -> Objective:
    """The selected channels' mean activation over the position region, minus ``act_penalty`` x
    the mean magnitude of the layer's other channels."""

    def value(acts: torch.Tensor) -> torch.Tensor:
        region = acts
        if acts.dim() > 3:  # a position / frequency axis
            region = acts[:, :, :, _span(acts.shape[3], target.position)]
        chosen = list(target.channels) or list(range(acts.shape[2]))
        selected = region[:, :, chosen].mean()
        if act_penalty <= 0.0 or len(chosen) == acts.shape[2]:
            return selected
        others = [c for c in range(acts.shape[2]) if c not in set(chosen)]
        return selected - act_penalty * region[:, :, others].abs().mean()

    return value


class WaveParam(torch.nn.Module):
    """The waveform as the input plus a change: ``forward() -> (1, samples)``."""

    audio: torch.Tensor

    def __init__(self, audio: torch.Tensor, delta: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("audio", audio.reshape(1, -1))
        self.delta = torch.nn.Parameter(delta.reshape(1, -1).clone() if delta is not None else torch.zeros_like(self.audio))

    def forward(self) -> torch.Tensor:
        return self.audio + self.delta

    def project(self, strength: float, rms: float) -> None:
        """Keep the change within ``strength`` x the input's RMS, and the samples within [-1, 1]."""
        with torch.no_grad():
            limit = strength * rms
            size = float(self.delta.pow(2).mean().sqrt())
            if size > limit:
                self.delta.mul_(limit / size)
            self.delta.copy_((self.audio + self.delta).clamp(-1.0, 1.0) - self.audio)


class SpectrumParam(torch.nn.Module):
    """A log-gain per STFT bin of the input, resynthesised with the input's phase: ``forward() -> (1, samples)``."""

    audio: torch.Tensor
    window: torch.Tensor
    spec: torch.Tensor

    def __init__(self, audio: torch.Tensor, n_fft: int = 512, hop: int = 128) -> None:
        super().__init__()
        self.samples = audio.numel()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft))
        spec = torch.stft(audio.reshape(1, -1), n_fft, hop, window=self.window, return_complex=True)
        self.register_buffer("spec", spec)
        self.register_buffer("audio", audio.reshape(1, -1))
        self.gain = torch.nn.Parameter(torch.zeros(spec.shape, dtype=torch.float32))

    def forward(self) -> torch.Tensor:
        return torch.istft(self.spec * torch.exp(self.gain), self.n_fft, self.hop, window=self.window, length=self.samples)

    def project(self, strength: float, rms: float) -> None:
        with torch.no_grad():
            self.gain.clamp_(-math.log1p(4.0 * strength), math.log1p(strength))


Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
"""``(batch, samples)`` -> the same shape, randomly changed."""


def jitter(samples: int) -> Transform:
    """Shift in time by up to ``samples`` either way (silence enters; nothing wraps round)."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if samples <= 0:
            return x
        shift = int(torch.randint(-samples, samples + 1, (1,), generator=g))
        if shift > 0:
            return F.pad(x, (shift, 0))[:, : x.shape[1]]
        if shift < 0:
            return F.pad(x, (0, -shift))[:, -shift:]
        return x

    return apply


def time_mask(fraction: float) -> Transform:
    """Silence one random span of ``fraction`` of the signal."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        width = int(fraction * x.shape[1])
        if width <= 0:
            return x
        start = int(torch.randint(0, x.shape[1] - width + 1, (1,), generator=g))
        keep = torch.ones_like(x)
        keep[:, start : start + width] = 0.0
        return x * keep

    return apply


def freq_mask(fraction: float) -> Transform:
    """Remove one random band of ``fraction`` of the spectrum (a 'pitch mask'), through one FFT."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        spec = torch.fft.rfft(x, dim=-1)
        width = int(fraction * spec.shape[-1])
        if width <= 0:
            return x
        start = int(torch.randint(0, spec.shape[-1] - width + 1, (1,), generator=g))
        keep = torch.ones(spec.shape[-1])
        keep[start : start + width] = 0.0
        return torch.fft.irfft(spec * keep, n=x.shape[-1], dim=-1)

    return apply


def compose(*transforms: Transform) -> Transform:
    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        for t in transforms:
            x = t(x, g)
        return x

    return apply


# ================================================================= dream


_FFT_FRONT: dict[type, bool] = {}


def auto_param(ear: Ear) -> str:
    """The parameterisation that suits the ear: "spectrum" for an ear with an FFT front end (a
    mel ear: musicnn, CPC), whose gradient through the log-mel reaches a waveform change only as
    fine, noise-like detail, and "wave" for an ear that looks at the waveform itself (CREPE).

    Found by running the ear once on silence and watching for an FFT (:class:`DeconvMode`),
    once per ear class.
    """
    kind = type(ear)
    if kind not in _FFT_FRONT:
        probe = torch.zeros(1, ear.window + ear.hop)
        with torch.no_grad(), DeconvMode() as mode:
            activations(ear, probe, Target(ear.layers[0].name), frames=1)
        _FFT_FRONT[kind] = mode.saw_fft
    return "spectrum" if _FFT_FRONT[kind] else "wave"


def resolve_param(ear: Ear, param: str) -> str:
    """``param`` as given, or for "auto" the ear's own (:func:`auto_param`)."""
    if param == "auto":
        return auto_param(ear)
    if param not in ("wave", "spectrum"):
        raise BadRequest(f"param must be one of auto, wave, spectrum, got {param!r}")
    return param


@dataclass
class DreamResult:
    audio: np.ndarray
    """``(samples,)`` float32 at the ear's rate: the dreamed signal (mix not applied)."""
    delta: np.ndarray
    """``(samples,)``: dreamed minus input (for warm starts and for adding back at another rate)."""
    before: float
    """Objective's selected-neuron activation on the input (same frames as ``after``)."""
    after: float
    steps: int
    seconds: float

    @property
    def gain(self) -> float:
        return self.after / self.before if abs(self.before) > 1e-9 else float("nan")


def dream(
    ear: Ear,
    audio: np.ndarray,
    target: Target,
    *,
    steps: int,
    lr: float = 0.25,
    strength: float = 1.0,
    frames: int | None = 8,
    param: str = "auto",
    jitter_samples: int = 64,
    time_mask_fraction: float = 0.1,
    freq_mask_fraction: float = 0.1,
    act_penalty: float = 0.0,
    noise_penalty: float = 0.05,
    hf_penalty: float = 0.2,
    delta: np.ndarray | None = None,
    seed: int = 0,
    measure: bool = True,
) -> DreamResult:
    """Raise the target's activation by ``steps`` steps of normalised gradient ascent on ``audio``.

    ``audio (samples,)`` float32 at ``ear.sample_rate``; ``delta`` (same shape) warm-starts the
    change (live: the previous version, shifted). Each step: parameterisation -> transforms ->
    ear -> objective - penalties; the step is ``lr x RMS(input) x grad / RMS(grad)`` (scale-free,
    so one ``lr`` suits every ear and level), then the change is projected (see module doc).
    ``measure`` adds one forward pass before and after (no augmentation) for the gain.
    ``param`` "auto" is :func:`auto_param`'s choice for the ear.
    """
    started = time.perf_counter()
    param = resolve_param(ear, param)
    x0 = torch.from_numpy(np.ascontiguousarray(audio, np.float32)).reshape(1, -1)
    rms = max(float(x0.pow(2).mean().sqrt()), 1e-3)
    if float(x0.abs().max()) < 1e-6:  # dreaming from digital silence: give the gradient something
        x0 = x0 + 1e-3 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed)
    p: WaveParam | SpectrumParam
    if param == "spectrum":
        p = SpectrumParam(x0)
    else:
        p = WaveParam(x0, torch.from_numpy(np.asarray(delta, np.float32)) if delta is not None else None)
    transform = compose(jitter(jitter_samples), time_mask(time_mask_fraction), freq_mask(freq_mask_fraction))
    value = objective(target, act_penalty=act_penalty)
    fixed = objective(target)
    n = max(1, x0.shape[1] // ear.hop)
    count = n if frames is None else min(frames, n)
    # The frames the before/after measurement reads: fixed, so the ratio compares like with like.
    probe = torch.Generator().manual_seed(seed + 1)

    def measured(x: torch.Tensor) -> float:
        with torch.no_grad():
            probe.manual_seed(seed + 1)
            return float(fixed(activations(ear, x, target, frames=count, generator=probe)))

    before = measured(x0) if measure else float("nan")
    scale = 1.0
    rate = lr
    param_tensor = next(iter(p.parameters()))

    def penalised(x: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        change = x - x0
        loss = -value(acts) / scale
        if noise_penalty > 0:
            loss = loss + noise_penalty * change.pow(2).mean() / rms**2
        if hf_penalty > 0:
            loss = loss + hf_penalty * change.diff(dim=-1).pow(2).mean() / rms**2
        return loss

    for step_index in range(steps):
        draw = g.get_state()  # to draw the same augmentation and frames again when judging the step
        x = p()
        acts = activations(ear, transform(x, g), target, frames=count, generator=g)
        if step_index == 0:  # penalties relative to the first objective: one weight fits every layer
            scale = max(abs(float(value(acts).detach())), 1e-3)
        loss = penalised(x, acts)
        (grad,) = torch.autograd.grad(loss, [param_tensor])
        if not bool(torch.isfinite(grad).all()):
            continue  # a bad step is skipped, never taken
        with torch.no_grad():
            old = param_tensor.detach().clone()
            size = grad.pow(2).mean().sqrt().clamp_min(1e-20)
            param_tensor.sub_(rate * (rms if isinstance(p, WaveParam) else 1.0) * grad / size)
            p.project(strength, rms)
            # Backtracking: a step that made the same batch worse overshot (the mel ears overshoot
            # at rates where CREPE still climbs); undo it and halve the rate. One forward pass.
            after_draw = g.get_state()
            g.set_state(draw)
            x = p()
            worse = float(penalised(x, activations(ear, transform(x, g), target, frames=count, generator=g))) > float(loss)
            g.set_state(after_draw)
            if worse:
                param_tensor.copy_(old)
                rate *= 0.5
    with torch.no_grad():
        out = p().reshape(-1)
    after = measured(out.reshape(1, -1)) if measure else float("nan")
    result = out.numpy().astype(np.float32)
    return DreamResult(
        result, result - x0.reshape(-1).numpy(), before, after, steps, time.perf_counter() - started
    )


# ================================================================= auralise


class _DeconvReLU(torch.autograd.Function):
    """ReLU forward; backward ``relu(grad)``: the deconvnet's rectification of the signal going back."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return torch.relu(grad)


class _PassLog(torch.autograd.Function):
    """A front end's log compression, crossed unchanged on the way back (see module doc)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, fn: Any) -> torch.Tensor:
        return fn(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


_RELUS = {F.relu, torch.relu, torch.Tensor.relu}
_LOGS = {torch.log, torch.log10, torch.log2, torch.log1p, torch.Tensor.log, torch.Tensor.log10}
_FFTS = {torch.fft.rfft, torch.fft.fft, torch.stft}


class DeconvMode(TorchFunctionMode):
    """Inside ``with DeconvMode() as m:``, every ReLU is a deconvnet ReLU and logs pass gradients
    unchanged; ``m.saw_fft`` tells whether the ear computed a spectrum (a T-F front end).

    A torch function mode is per thread, so the live ear worker is not affected.
    """

    def __init__(self) -> None:
        super().__init__()
        self.saw_fft = False

    def __torch_function__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        if func in _RELUS and not kwargs.get("inplace", False):
            return _DeconvReLU.apply(args[0])
        if func in _LOGS and not kwargs:
            return _PassLog.apply(args[0], func)
        if func in _FFTS:
            self.saw_fft = True
        return func(*args, **kwargs)


def _channel_min(acts: torch.Tensor) -> np.ndarray:
    """``(n, channels, *rest)`` -> each channel's minimum, ``(channels,)``: its resting level."""
    return acts.transpose(0, 1).reshape(acts.shape[1], -1).min(dim=1).values.numpy()


def _resting(ear: Ear, layer: str) -> tuple[np.ndarray, np.ndarray] | None:
    """For CREPE, each channel's exact resting level (its batch norm of a zero ReLU output) and the
    norm's gain, so the ReLU's own output -- zero exactly where a unit does not fire -- seeds the
    deconvnet, as in Zeiler's. None for ears where the minimum over the signal has to do."""
    from .ears.crepe import Crepe

    if not isinstance(ear, Crepe) or layer not in ear.net.blocks:
        return None
    norm = ear.net.blocks[layer].norm
    assert isinstance(norm, torch.nn.BatchNorm1d)
    with torch.no_grad():
        floor = norm(torch.zeros(1, norm.num_features, 1))[0, :, 0]
        assert norm.running_var is not None
        gain = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    return floor.numpy(), gain.numpy()


def _network_input(ear: Ear, windows: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The network's input as a leaf, the layer computed from it, and the gain back to raw audio.

    For CREPE the network's input is the *normalised* window: the deconvnet stops there and the
    reconstruction is scaled back by the window's std (undoing the normalisation as a gain), so
    a faint window's reconstruction is faint -- not, as through the normalisation's own
    backward, amplified by one over its loudness. Other ears start from the raw window.
    """
    from .ears.crepe import Crepe, normalise

    if isinstance(ear, Crepe) and layer in ear.net.blocks:
        centred = windows - windows.mean(dim=-1, keepdim=True)
        std = torch.sqrt(centred.pow(2).mean(dim=-1, keepdim=True) + 1e-16)
        leaf = normalise(windows).detach().requires_grad_(True)
        x = leaf[:, None, :]
        for name, block in ear.net.blocks.items():
            x = block(x)
            if name == layer:
                break
        return leaf, x, std
    leaf = windows.detach().requires_grad_(True)
    return leaf, layer_frames(ear, leaf, layer), torch.ones(windows.shape[0], 1)


@dataclass
class Auralisation:
    audio: np.ndarray
    """``(samples,)`` float32 at ``sample_rate``: the input through the mask, with its own phase."""
    mask: np.ndarray
    """``(n_fft // 2 + 1, frames)`` in [0, 1]; frame ``g`` ends at input sample ``(g + 1) * hop - pad + n_fft``."""
    sample_rate: int
    n_fft: int
    hop: int
    pad: int
    """Zeros before the input on the STFT grid."""
    peak: float
    """The raw mask's maximum before scaling (0: the feature never fired)."""
    floor: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


def _stft_hop(hop: int, n_fft: int) -> int:
    """The STFT hop for a mask: the ear's hop if fine enough, else its largest divisor <= n_fft / 4."""
    if hop <= n_fft // 2:
        return hop
    return next(d for d in range(n_fft // 4, 0, -1) if hop % d == 0)


def _frames(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
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


def auralise(
    ear: Ear,
    audio: np.ndarray,
    layer: str,
    channel: int,
    *,
    n_fft: int = 1024,
    stride: int = 1,
    floor: np.ndarray | None = None,
    scale: float | None = None,
    batch: int = 32,
) -> Auralisation:
    """Deconvolve ``layer:channel`` of ``audio (samples,)`` (at ``ear.sample_rate``) into a mask and listen through it.

    ``floor`` (per channel of the layer) is the resting level subtracted from the feature map
    (default: its minimum over this signal); ``scale`` divides the raw mask (default: its
    maximum, so the mask peaks at 1). Live use passes running values so chunks agree.
    """
    check_target(ear, Target(layer, (channel,)))
    x = np.ascontiguousarray(audio, np.float32).reshape(-1)
    rest = _resting(ear, layer)
    if rest is not None and floor is None:
        floor = rest[0]
    if isinstance(ear, WindowedEar):
        fft = min(n_fft, ear.window)
        # Strided frames must still overlap on the STFT grid (hop <= n_fft / 2) for overlap-add.
        stride = max(1, min(stride, (fft // 2) // ear.hop)) if ear.hop <= fft // 2 else 1
        hop = ear.hop * stride
        sh = _stft_hop(hop, fft)
        pad = ear.window - ear.hop
        xp = np.concatenate([np.zeros(pad, np.float32), x])
        count = (xp.shape[0] - ear.window) // hop + 1 if xp.shape[0] >= ear.window else 0
        starts = np.arange(count) * hop
        xt = torch.from_numpy(xp)
        if floor is None and count > batch:  # the resting level must be known before any backward
            with torch.no_grad():
                maps = [
                    layer_frames(ear, torch.stack([xt[s : s + ear.window] for s in starts[i : i + batch]]), layer)
                    for i in range(0, count, batch)
                ]
            floor = _channel_min(torch.cat(maps))
        total = (xp.shape[0] - fft) // sh + 1
        mask = np.zeros((total, fft // 2 + 1), np.float32)
        local = (ear.window - fft) // sh + 1
        for i in range(0, count, batch):
            windows = torch.stack([xt[s : s + ear.window] for s in starts[i : i + batch]])
            with DeconvMode() as mode:
                leaf, acts, gain = _network_input(ear, windows, layer)
                if floor is None:
                    floor = _channel_min(acts.detach())
                f = torch.from_numpy(np.asarray(floor, np.float32))
                seed = torch.zeros_like(acts)
                above = (acts[:, channel] - f[channel]).detach()
                if rest is not None:  # the ReLU's output, sent back from the ReLU (through the norm's gain)
                    g = float(rest[1][channel])
                    seed[:, channel] = (above / g).clamp_min(0.0) / g
                else:
                    seed[:, channel] = above.clamp_min(0.0)
            (recon,) = torch.autograd.grad(acts, leaf, seed)  # outside the mode: only the forward needs it
            recon = recon * gain
            r = recon.numpy()
            for j, s in enumerate(starts[i : i + batch]):
                m = np.abs(_frames(r[j], fft, sh))
                if mode.saw_fft:
                    m /= np.abs(_frames(xp[s : s + ear.window], fft, sh)) + 1e-3 * (np.abs(r[j]).max() + 1e-12)
                g0 = s // sh
                mask[g0 : g0 + local] = np.maximum(mask[g0 : g0 + local], m[: total - g0])
        hop_out = sh
    else:
        fft, sh = n_fft, _stft_hop(ear.hop, n_fft)
        pad = fft - sh
        xp = np.concatenate([np.zeros(pad, np.float32), x])
        xt = torch.from_numpy(x).reshape(1, -1).requires_grad_(True)
        with DeconvMode() as mode:
            acts = ear.forward(xt)[layer]  # (1, frames, channels, *rest)
            chan = acts[0, :, channel].detach()
            if floor is None:
                floor = acts[0].detach().transpose(0, 1).reshape(acts.shape[2], -1).min(dim=1).values.numpy()
            seed = torch.zeros_like(acts)
            seed[0, :, channel] = (chan - float(np.asarray(floor)[channel])).clamp_min(0.0)
        (recon,) = torch.autograd.grad(acts, xt, seed)
        r = np.concatenate([np.zeros(pad, np.float32), recon.reshape(-1).numpy()])
        mask = np.abs(_frames(r, fft, sh)).astype(np.float32)
        if mode.saw_fft:
            mask /= np.abs(_frames(xp, fft, sh)) + 1e-3 * (np.abs(r).max() + 1e-12)
        hop_out = sh
    peak = float(mask.max(initial=0.0))
    denominator = scale if scale is not None else peak
    mask = np.clip(mask / denominator, 0.0, 1.0) if denominator > 0 else np.zeros_like(mask)
    y = apply_mask(x, mask.T, fft, hop_out, pad)
    return Auralisation(y, mask.T.copy(), ear.sample_rate, fft, hop_out, pad, peak, np.asarray(floor, np.float32))


def apply_mask(audio: np.ndarray, mask: np.ndarray, n_fft: int, hop: int, pad: int) -> np.ndarray:
    """``audio (samples,)`` through ``mask (bins, frames)`` on the STFT grid with ``pad`` zeros before; input phase kept."""
    xp = np.concatenate([np.zeros(pad, np.float32), np.asarray(audio, np.float32).reshape(-1)])
    spec = _frames(xp, n_fft, hop)
    frames = min(spec.shape[0], mask.shape[1])
    return resynthesise(spec[:frames] * mask[:, :frames].T, n_fft, hop, xp.shape[0])[pad:]


def save_mask_png(result: Auralisation, path: str | Path, title: str = "") -> Path:
    """The mask as an image (time across, frequency up), beside the audio."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100)
    # Each column at the centre of its STFT frame, in seconds of the input.
    first = (result.n_fft / 2 - result.pad) / result.sample_rate
    last = first + max(result.mask.shape[1] - 1, 1) * result.hop / result.sample_rate
    ax.imshow(
        result.mask, origin="lower", aspect="auto", cmap="magma", vmin=0.0, vmax=1.0,
        extent=(first, last, 0.0, result.sample_rate / 2000.0),
    )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (kHz)")
    ax.set_title(title or "auralisation mask")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# ================================================================= shared by live, render and CLI


def target_from(ear: Ear, values: dict[str, Any], selection: Any = None) -> Target:
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


def dream_with(ear: Ear, audio: np.ndarray, target: Target, values: dict[str, Any], *, steps: int, **kw: Any) -> DreamResult:
    """:func:`dream` with its settings taken from a parameter dict (``PARAMS`` names)."""
    return dream(
        ear, audio, target, steps=steps, lr=float(values["lr"]), strength=float(values["strength"]),
        frames=int(values["frames"]), param=str(values["param"]),
        jitter_samples=int(float(values["jitter"]) * ear.sample_rate),
        time_mask_fraction=float(values["time_mask"]), freq_mask_fraction=float(values["freq_mask"]),
        act_penalty=float(values["act_penalty"]), noise_penalty=float(values["noise_penalty"]),
        hf_penalty=float(values["hf_penalty"]), **kw,
    )


def auralise_with(ear: Ear, audio: np.ndarray, target: Target, values: dict[str, Any], **kw: Any) -> Auralisation:
    channel = target.channels[0] if target.channels else 0
    return auralise(ear, audio, target.layer, channel, stride=int(values["stride"]), **kw)


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


def sonify_file(
    ear: Ear, audio: np.ndarray, sample_rate: int, mode: str, values: dict[str, Any], selection: Any = None
) -> tuple[np.ndarray, DreamResult | Auralisation]:
    """Offline: ``audio (samples,)`` at ``sample_rate`` -> the sonification at the same rate, mixed by ``mix``.

    Dream adds the change, upsampled, to the original (the original keeps its highs); auralise
    resynthesises at the ear's rate and comes back to ``sample_rate``.
    """
    if mode not in ("dream", "auralise"):
        raise BadRequest(f"mode must be dream or auralise, got {mode!r}")
    target = target_from(ear, values, selection)
    x = np.asarray(audio, np.float32).reshape(-1)
    at_ear = resample(x, sample_rate, ear.sample_rate, aligned=True).astype(np.float32)
    result: DreamResult | Auralisation
    if mode == "dream":
        result = dream_with(ear, at_ear, target, values, steps=int(values["iterations"]))
        change = resample(result.delta, ear.sample_rate, sample_rate, aligned=True)[: x.shape[0]]
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


def output_path(name: str, overwrite: bool = False) -> Path:
    """Where a render goes: relative names under ``cache_dir()/renders``; only .wav or .flac."""
    from .paths import cache_dir

    path = Path(name).expanduser()
    if path.suffix.lower() not in AUDIO_FORMATS:
        raise BadRequest(f"render name must end in .wav or .flac, got {name!r}")
    if not path.is_absolute():
        path = cache_dir() / "renders" / path
    if path.exists() and not overwrite:
        raise BadRequest(f"{path} exists (pass overwrite to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_audio(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    import soundfile

    soundfile.write(str(path), np.asarray(audio, np.float32), sample_rate, format=AUDIO_FORMATS[path.suffix.lower()])


# ================================================================= live


def crossfade(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Raised-cosine crossfade ``old -> new`` (``(n, ...)``); the gains sum to one (see module doc)."""
    n = old.shape[0]
    ramp = np.sin(0.5 * np.pi * (np.arange(n) + 0.5) / n) ** 2
    ramp = ramp.reshape(-1, *([1] * (old.ndim - 1)))
    return (old * (1.0 - ramp) + new * ramp).astype(np.float32)


class Sonifier:
    """The live sonifier: a thread that reads ``engine.recent`` and writes ``engine.audio.output``.

    Latency, input to output: the queue (``chunk`` + ``queue`` + four audio blocks: room for one
    update's compute, at most a chunk when real time) + ``fade`` + a 5 ms margin (the newest
    samples of each version are held back to be crossfaded with the next). Defaults: 0.2 s
    chunks, 20 ms fades, 48 kHz / 256 -> about 0.45 s.
    """

    MARGIN = 0.005
    """Seconds at the newest end of each version never played: the resampler's edge lives there."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.values: dict[str, Any] = defaults()
        self.mode = "off"
        self.ready = threading.Event()
        """Set once the thread has warmed up and updates begin."""
        self._lock = threading.Lock()
        self._running = False
        self._thread: threading.Thread | None = None
        self._pos: int | None = None
        self._tail: np.ndarray | None = None
        self._last: np.ndarray | None = None
        self._delta: np.ndarray | None = None  # the previous dream's change, at the ear's rate
        self._delta_end = 0
        self._floor: np.ndarray | None = None
        self._scale = 0.0
        self._ear: Ear | None = None
        self._target: Target | None = None
        self.counters = {"updates": 0, "steps": 0, "behind": 0, "not_finite": 0, "errors": 0, "starved": 0, "ran_dry": 0}
        self._step_seconds = 0.0
        self._busy = 0.0
        self._cpu = 0.0
        self._audio_seconds = 0.0
        self.last_gain = float("nan")
        self.seam_jump = 0.0
        self.body_jump = 0.0

    # -------------------------------------------------------------- control

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise BadRequest(f"sonify mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode != "off":
            self.current_target()  # refuse a mode whose target is invalid now, with the reason
        with self._lock:
            self.mode = mode

    def set_param(self, name: str, value: object) -> None:
        spec = BY_NAME.get(name)
        if spec is None:
            raise NotFound(f"no sonify parameter {name!r} (parameters: {', '.join(BY_NAME)})")
        typed = spec.coerce(value)
        trial = {**self.values, name: typed}
        ear = self.engine.listening.ear
        if name in ("layer", "channel") or name.startswith(("region_", "position_")):
            if name == "layer" and typed and trial["channel"] >= 0:
                layer = ear.layer(str(typed))
                if trial["channel"] >= layer.channels:
                    trial["channel"] = -1  # the old channel belongs to the old layer
            target_from(ear, trial, self.engine.selection)
        if name == "chunk" and float(typed) <= float(trial["fade"]) or name == "fade" and float(typed) >= float(trial["chunk"]):
            raise BadRequest(f"fade ({trial['fade']:g} s) must be shorter than chunk ({trial['chunk']:g} s)")
        if name in ("window", "chunk", "fade") and float(trial["window"]) < float(trial["chunk"]) + float(trial["fade"]) + 2 * self.MARGIN:
            raise BadRequest("window must be at least chunk + fade + 0.01 s")
        if name in ("dry", "wet"):
            self.engine.audio.set_mix(float(trial["dry"]), float(trial["wet"]))
        with self._lock:
            self.values = trial

    def current_target(self) -> Target:
        return target_from(self.engine.listening.ear, self.values, self.engine.selection)

    def render(self, seconds: float, name: str, overwrite: bool = False) -> str:
        """The sonification (current mode, dream if off) of the last ``seconds`` of input, to a file; returns its path."""
        if not (math.isfinite(seconds) and 0.0 < seconds <= 10.0):
            raise BadRequest(f"seconds must be in (0, 10] (the server keeps 10 s of input), got {seconds}")
        path = output_path(name, overwrite)
        sr = self.engine.config.audio.sample_rate
        audio = self.engine.recent.latest(int(seconds * sr))[:, 0].copy()
        mode = self.mode if self.mode != "off" else "dream"
        with self._lock:
            values = dict(self.values)
        out, _ = sonify_file(self.engine.listening.ear, audio, sr, mode, values, self.engine.selection)
        write_audio(path, out, sr)
        return str(path)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="sonifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def stats(self) -> dict[str, float | int | str]:
        steps = self.counters["steps"]
        return {
            "mode": self.mode,
            **self.counters,
            "steps_per_second": steps / self._step_seconds if self._step_seconds > 0 else 0.0,
            "real_time_factor": self._busy / self._audio_seconds if self._audio_seconds > 0 else 0.0,
            # CPU the sonifier's thread used per second of audio: what real time needs of one core
            # on an otherwise idle machine (the wall-clock factor above includes waiting for a core).
            "cpu_real_time_factor": self._cpu / self._audio_seconds if self._audio_seconds > 0 else 0.0,
            "last_gain": self.last_gain,
            "seam_jump": self.seam_jump,
            "body_jump": self.body_jump,
            "queued": self.engine.audio.output.available(),
        }

    # -------------------------------------------------------------- the thread

    def _warm_up(self) -> None:
        """The first dream and deconvolution pay one-off costs (torch imports sympy on the first
        backward with a seed; the function mode sets itself up): seconds on a busy machine. Pay
        them before any live update, which would otherwise starve the output."""
        try:
            ear = self.engine.listening.ear
            x = 0.1 * np.random.default_rng(0).standard_normal(ear.window + ear.hop).astype(np.float32)
            target = target_from(ear, defaults(), self.engine.selection)
            auralise(ear, x, target.layer, target.channels[0] if target.channels else 0)
            dream(ear, x, target, steps=1, frames=1)
        except Exception:  # warming up is an optimisation; the loop reports real failures
            log.exception("sonifier warm-up")

    def _loop(self) -> None:
        self._warm_up()
        self.ready.set()
        while self._running:
            try:
                worked = self._update()
            except Exception:  # a failed update plays nothing new; the sonifier keeps running
                log.exception("sonifier")
                self.counters["errors"] += 1
                self._restart()
                time.sleep(0.05)
                continue
            if not worked:
                time.sleep(0.002)
        self._fade_out()

    def _restart(self) -> None:
        self._fade_out()
        self._pos = None
        self._delta = None
        self._floor = None
        self._scale = 0.0

    def _fade_out(self) -> None:
        """End the output smoothly: the held-back tail, faded to silence."""
        if self._tail is not None:
            out = crossfade(self._tail, np.zeros_like(self._tail))
            self._write(out)
        self._tail = None

    def _write(self, mono: np.ndarray) -> None:
        if self._last is not None and mono.shape[0]:
            self.seam_jump = max(self.seam_jump, float(abs(mono[0] - self._last[-1])))
        if mono.shape[0]:
            self._last = mono[-1:].copy()
        self.engine.audio.output.write(np.repeat(mono.reshape(-1, 1), 2, axis=1))

    def _segment(self, start: int, stop: int) -> np.ndarray:
        """Input samples ``[start, stop)`` (absolute counts of ``engine.recent``), oldest first."""
        ring = self.engine.recent
        idx = np.arange(start, stop)
        out = ring._data[idx % ring.capacity, 0].copy()
        out[idx < 0] = 0.0
        return out

    def _update(self) -> bool:
        with self._lock:
            mode, values = self.mode, dict(self.values)
        if mode == "off":
            if self._pos is not None:
                self._restart()
            return False
        engine = self.engine
        ear = engine.listening.ear
        sr = engine.config.audio.sample_rate
        block = engine.config.audio.block
        chunk = int(round(float(values["chunk"]) * sr))
        fade = int(round(float(values["fade"]) * sr))
        margin = int(round(self.MARGIN * sr))
        if mode == "auralise":
            # Overlap-add is only whole where n_fft of STFT frames overlap: the newest n_fft
            # samples of a version are never played (they are, next update, in its interior).
            margin += int(math.ceil(min(1024, ear.window) * sr / ear.sample_rate))
        need = max(int(round(float(values["window"]) * sr)), chunk + fade + 2 * margin)
        written = engine.recent.written
        if ear is not self._ear:
            self._ear, self._floor, self._scale, self._delta = ear, None, 0.0, None
        # The output ring is the clock. Input and output share the audio process's clock, so one
        # chunk of output per chunk of input keeps the queue steady; the lead must cover one
        # update's compute (at most a chunk when real time) plus a few blocks of jitter.
        lead = chunk + int(round(float(values["queue"]) * sr)) + 4 * block
        queued = engine.audio.output.available()
        if self._pos is None:
            self._pos = written
            if queued < lead:
                self._write(np.zeros(lead - queued, np.float32))
            self._last = None
            return True
        if written >= self._pos + chunk:
            end = self._pos + chunk  # aligned: this version continues exactly where the last one ended
            if written - end > max(sr, 4 * chunk):  # far behind: drop the backlog, fade into the present
                self.counters["behind"] += 1
                end, self._delta = written, None
        elif queued < chunk // 2 + 2 * block:
            # The input lags the output (the ear worker, which fills engine.recent, is late or
            # skipped audio on a busy machine): play the newest input now rather than run dry; the
            # crossfade covers the misalignment.
            self.counters["starved"] += 1
            end = written
        else:
            return False
        if queued > lead + 2 * chunk:  # latency crept up (after a stall): skip a version to drain it
            self._pos = end
            return False
        started, cpu_started = time.perf_counter(), time.thread_time()
        x = self._segment(end - need, end)
        try:
            target = target_from(ear, values, engine.selection)
        except BadRequest as exc:
            # The ear changed under the parameters (its layers differ): follow the selection.
            log.warning("sonify: %s; following the selection instead", exc)
            with self._lock:
                self.values.update(layer="", channel=-1, region_start=0.0, region_end=1.0, position_start=0.0, position_end=1.0)
            return False
        if target != self._target:
            self._target, self._floor, self._scale, self._delta = target, None, 0.0, None
        played = chunk + fade + 2 * margin  # the newest samples this update can still be heard in
        if mode == "dream":
            at_ear = resample(x, sr, ear.sample_rate, aligned=True).astype(np.float32)
            if target.time == (0.0, 1.0):
                # Only frames that reach into what will be played are worth a step: the rest of
                # the window is context (and the warm start's past).
                reach = (played * ear.sample_rate / sr + ear.window) / at_ear.shape[0]
                target = replace(target, time=(max(0.0, 1.0 - reach), 1.0))
            y = self._dream(ear, at_ear, target, values, end)
            wet = x + resample(y - at_ear, ear.sample_rate, sr, aligned=True)[:need].astype(np.float32)
        else:
            # Auralise is stateless per frame: deconvolve only what is played, plus one ear window.
            context = min(need, played + int(math.ceil(ear.window * sr / ear.sample_rate)))
            at_ear = resample(x[need - context :], sr, ear.sample_rate, aligned=True).astype(np.float32)
            a = self._auralise(ear, at_ear, target, values)
            wet = resample(a, ear.sample_rate, sr, aligned=True)[:context].astype(np.float32)
            wet = np.concatenate([np.zeros(need - context, np.float32), wet, np.zeros(context - wet.shape[0], np.float32)])
        mix = float(values["mix"])
        y48 = mix * wet + (1.0 - mix) * x
        new = y48[need - chunk - fade - margin : need - margin]
        if not np.isfinite(new).all():
            self.counters["not_finite"] += 1
            new = x[need - chunk - fade - margin : need - margin].copy()  # the input, rather than noise
            self._delta = None
        new = soft_limit(new.astype(np.float32))
        head, body, tail = new[:fade], new[fade:chunk], new[chunk:]
        head = crossfade(self._tail if self._tail is not None else np.zeros_like(head), head)
        out = np.concatenate([head, body])
        self.body_jump = max(self.body_jump, float(np.abs(np.diff(body)).max(initial=0.0)))
        # The crossfade itself: from the last sample written, through the head.
        joined = head if self._last is None else np.concatenate([self._last, head])
        self.seam_jump = max(self.seam_jump, float(np.abs(np.diff(joined)).max(initial=0.0)))
        if engine.audio.output.available() == 0:
            # The wet path has been playing silence: a dropout (the audio engine counts only
            # partly filled blocks as underruns).
            self.counters["ran_dry"] += 1
        self._write(out)
        self._tail = tail
        self._pos = end
        self.counters["updates"] += 1
        self._busy += time.perf_counter() - started
        self._cpu += time.thread_time() - cpu_started
        self._audio_seconds += chunk / sr
        return True

    def _dream(self, ear: Ear, x: np.ndarray, target: Target, values: dict[str, Any], end: int) -> np.ndarray:
        """One live dream update on ``x`` (ear rate), warm-started from the previous change."""
        sr_in = self.engine.config.audio.sample_rate
        delta = None
        if self._delta is not None and resolve_param(ear, str(values["param"])) == "wave":
            # The previous change, moved by how far the input advanced: its past carries over.
            shift = int(round((end - self._delta_end) * ear.sample_rate / sr_in))
            d = np.zeros_like(x)
            keep = self._delta.shape[0] - shift
            if 0 < keep:
                n = min(keep, x.shape[0])
                d[:n] = self._delta[shift : shift + n]
            delta = d
        steps = int(values["steps"])
        # Measuring the gain costs two forward passes: every eighth update is enough for stats().
        measure = self.counters["updates"] % 8 == 0
        result = dream_with(ear, x, target, values, steps=steps, delta=delta, seed=self.counters["updates"], measure=measure)
        self._step_seconds += result.seconds
        self.counters["steps"] += steps
        if math.isfinite(result.gain):
            self.last_gain = result.gain
        self._delta = result.delta if np.isfinite(result.delta).all() else None
        self._delta_end = end
        return result.audio

    def _auralise(self, ear: Ear, x: np.ndarray, target: Target, values: dict[str, Any]) -> np.ndarray:
        """One live auralise update; the mask's scale is shared across updates, so chunks agree in level."""
        a = auralise_with(ear, x, target, values)
        # The scale follows the loudest mask so far, decaying (-6 dB in 5 s) so it can recover.
        decay = 0.5 ** (float(values["chunk"]) / 5.0)
        self._scale = max(self._scale * decay, a.peak)
        self.last_gain = a.peak
        if self._scale <= 0.0:
            return np.zeros_like(x)
        return apply_mask(x, a.mask * (a.peak / self._scale), a.n_fft, a.hop, a.pad)


# ================================================================= CLI and bench


def _add_param_options(p: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    for spec in PARAMS:
        if spec.name in ("layer", "channel", "dry", "wet", *skip):
            continue
        kind: Any = {"n": float, "i": int, "s": str}[spec.type]
        p.add_argument(f"--{spec.name.replace('_', '-')}", type=kind, default=spec.default, choices=spec.choices, help=f"{spec.doc} (default {spec.default})")


def _add_common(p: argparse.ArgumentParser) -> None:
    from .ears import registry

    p.add_argument("file", help="audio file (any rate, mixed to mono)")
    p.add_argument("--ear", default=registry.DEFAULT, choices=registry.names())
    p.add_argument("--layer", required=True, help="layer name (earsight ears / /ear/model/info)")
    p.add_argument("--channel", type=int, default=-1, help="channel (-1: all channels of the layer)")
    p.add_argument("--out", required=True, help="output .wav or .flac")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--seconds", type=float, default=0.0, help="only the first this many seconds (0: all)")


def add_dream_arguments(p: argparse.ArgumentParser) -> None:
    _add_common(p)
    _add_param_options(p, skip=("window", "chunk", "fade", "stride", "steps"))


def add_auralise_arguments(p: argparse.ArgumentParser) -> None:
    _add_common(p)
    p.add_argument("--mix", type=float, default=1.0, help="0 the input, 1 the auralisation")
    p.add_argument("--stride", type=int, default=1, help="ear frames between deconvolved frames")


def _run(args: argparse.Namespace, mode: str) -> int:
    import soundfile

    from .ears import registry

    ear = registry.load(args.ear)
    try:
        data, sr = soundfile.read(args.file, dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as exc:  # soundfile's errors: a missing or unreadable file
        raise NotFound(f"cannot read {args.file}: {exc}") from exc
    audio = data.mean(axis=1)
    if args.seconds > 0:
        audio = audio[: int(args.seconds * sr)]
    out_path = Path(args.out)
    if out_path.suffix.lower() not in AUDIO_FORMATS:
        raise BadRequest(f"--out must end in .wav or .flac, got {args.out}")
    if out_path.exists() and not args.overwrite:
        raise BadRequest(f"{out_path} exists (--overwrite to replace it)")
    values = defaults()
    for name in values:
        if hasattr(args, name):
            values[name] = BY_NAME[name].coerce(getattr(args, name))
    out, result = sonify_file(ear, audio, int(sr), mode, values)
    write_audio(out_path, out, int(sr))
    if isinstance(result, DreamResult):
        print(f"{out_path}: {result.steps} steps in {result.seconds:.1f} s, activation {result.before:.4g} -> {result.after:.4g} (x{result.gain:.2f})")
    else:
        png = save_mask_png(result, out_path.with_suffix(".png"), f"{args.ear} {args.layer}:{args.channel}")
        print(f"{out_path}, mask {png} (peak {result.peak:.4g}{', the feature never fired' if result.peak == 0 else ''})")
    return 0


def run_dream(args: argparse.Namespace) -> int:
    return _run(args, "dream")


def run_auralise(args: argparse.Namespace) -> int:
    return _run(args, "auralise")


def bench_sonify(ear_name: str, seconds: float = 2.0) -> dict[str, float | str]:
    """Dream steps per second and live real-time factors (compute / audio) with the default settings.

    The live factors time one update as the server does it (window ``window`` s, new audio
    ``chunk`` s, ``steps`` steps): below 1 is real time, on the threads torch has.
    """
    from .ears import registry

    ear = registry.load(ear_name)
    values = defaults()
    rng = np.random.default_rng(0)
    shortest = ear.window + ear.hop  # an ear needs one whole window (musicnn's is 3 s)
    seconds = max(seconds, 2 * shortest / ear.sample_rate)
    t = np.arange(int(seconds * ear.sample_rate)) / ear.sample_rate
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(t.shape)).astype(np.float32)
    convs = [layer.name for layer in ear.layers if layer.kind == "conv"] or [ear.layers[0].name]
    values["layer"] = convs[len(convs) // 2]  # a middle layer: conv1 would flatter, the top is rarely chosen
    values["channel"] = 0
    target = target_from(ear, values)
    dream_with(ear, audio[: max(ear.sample_rate // 4, shortest)], target, values, steps=1)  # warm up
    r = dream_with(ear, audio, target, values, steps=8, measure=False)
    steps_per_second = 8 / r.seconds
    window = audio[: max(int(float(values["window"]) * ear.sample_rate), shortest)]
    chunk = float(values["chunk"])
    started = time.perf_counter()
    for i in range(4):  # as a live update: the gain is measured on one update in eight only
        dream_with(ear, window, target, values, steps=int(values["steps"]), seed=i, measure=False)
    live_dream = (time.perf_counter() - started) / 4 / chunk
    # As a live update: only what is played (chunk, fade, margins) plus one ear window is deconvolved.
    played = chunk + float(values["fade"]) + 2 * Sonifier.MARGIN + min(1024, ear.window) / ear.sample_rate
    segment = audio[: int(played * ear.sample_rate) + ear.window]
    auralise_with(ear, segment, target, values)
    started = time.perf_counter()
    for _ in range(2):
        auralise_with(ear, segment, target, values)
    live_auralise = (time.perf_counter() - started) / 2 / chunk
    return {
        "layer": target.layer,
        "dream_steps_per_second": steps_per_second,
        "live_dream_rtf": live_dream,
        "live_auralise_rtf": live_auralise,
        "window_s": window.shape[0] / ear.sample_rate,
        "chunk_s": chunk,
        "frames_per_step": float(values["frames"]),
    }
