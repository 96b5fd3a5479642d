"""dream (Immersions): gradient ascent on the input audio so that chosen neurons respond more.

It is written the way lucent writes feature visualisation, as three small nouns composed by one
function:

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
at most ``strength`` times the input's, and samples stay within [-1, 1]. The result's loudness is
then bounded by construction (:func:`~.dsp.bound_loudness`): the change is shrunk toward the input
until the output's RMS is within ``loudness_db`` of the input's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..ears.base import Ear
from ..errors import BadRequest
from .dsp import bound_loudness
from .target import Target, activations, span

LOUDNESS_DB = 3.0
"""The dream's output RMS stays within this many dB of its input's (see :func:`dream`)."""


Objective = Callable[[torch.Tensor], torch.Tensor]
"""Activations ``(batch, k, channels, *rest)`` -> a scalar to raise."""


def objective(target: Target, *, act_penalty: float = 0.0) -> Objective:
    """The selected channels' mean activation over the position region, minus ``act_penalty`` x
    the mean magnitude of the layer's other channels."""

    def value(acts: torch.Tensor) -> torch.Tensor:
        region = acts
        if acts.dim() > 3:  # a position / frequency axis
            region = acts[:, :, :, span(acts.shape[3], target.position)]
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


def auto_param(ear: Ear) -> str:
    """The parameterisation that suits the ear: "spectrum" for an ear with an FFT front end (a
    mel ear: musicnn, CPC), whose gradient through the log-mel reaches a waveform change only as
    fine, noise-like detail, and "wave" for an ear that looks at the waveform itself (CREPE).

    The ear declares its front end (:attr:`Ear.front_end <earsight.ears.base.Ear.front_end>`).
    """
    if ear.front_end not in ("wave", "spectrum"):
        raise BadRequest(f"ear {ear.name!r} declares front end {ear.front_end!r}; expected wave or spectrum")
    return ear.front_end


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
    spread: float = float("nan")
    """The target's spread on reference audio (:mod:`earsight.sonify.spread`), when measured."""

    @property
    def rise_spreads(self) -> float:
        """The rise in units of the target's spread: the same yardstick for every unit."""
        return self.rise / self.spread if self.spread > 0 else float("nan")

    @property
    def rise(self) -> float:
        """How much the selected neurons' activation rose: meaningful for any unit."""
        return self.after - self.before

    @property
    def gain(self) -> float:
        """``after / before`` where that means something (a positive baseline); NaN otherwise: the
        ratio of a negative or zero mean says nothing (-0.38 -> 2.65 is not "x-6.97")."""
        return self.after / self.before if self.before > 1e-9 else float("nan")


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
    loudness_db: float | None = LOUDNESS_DB,
) -> DreamResult:
    """Raise the target's activation by ``steps`` steps of normalised gradient ascent on ``audio``.

    ``audio (samples,)`` float32 at ``ear.sample_rate``; ``delta`` (same shape) warm-starts the
    change (live: the previous version, shifted). Each step: parameterisation -> transforms ->
    ear -> objective - penalties; the step is ``lr x RMS(input) x grad / RMS(grad)`` (scale-free,
    so one ``lr`` suits every ear and level), then the change is projected (see module doc).
    ``measure`` adds one forward pass before and after (no augmentation) for the gain.
    ``param`` "auto" is :func:`auto_param`'s choice for the ear. ``loudness_db`` bounds the
    result's RMS relative to the input's (None: no bound beyond ``strength``).
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
    if loudness_db is not None:
        # By construction, whatever the ascent did (the strength cap bounds the change, not the
        # loudness: a spectrum gain of 0.2-2 per bin, or a change up to the input's RMS).
        out = torch.from_numpy(bound_loudness(x0.reshape(-1).numpy(), out.numpy(), loudness_db))
    after = measured(out.reshape(1, -1)) if measure else float("nan")
    result = out.numpy().astype(np.float32)
    return DreamResult(
        result, result - x0.reshape(-1).numpy(), before, after, steps, time.perf_counter() - started
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
