"""dream (Immersions): gradient ascent on the input audio so that chosen neurons respond more.

It is written the way lucent writes feature visualisation, as three small nouns composed by one
function:

- an **objective** (:func:`objective`): activations -> a number to raise (the selected channels'
  mean over a time and position region, minus penalties);
- a **parameterisation**: what is optimised. :class:`~.change.ChangeParam` (the default): a
  change added to the input, as pink-weighted Fourier coefficients; :class:`WaveParam` (the
  change's samples) and :class:`SpectrumParam` (a log-gain per STFT bin of the input);
- **transforms** (:func:`jitter`, :func:`time_mask`, :func:`freq_mask`, :func:`compose`): random
  augmentations applied before the ear looks, so the ascent finds sounds and not adversarial
  noise that works at one exact alignment;

and :func:`dream` composes them, with Adam. Every step's signal is shaped
(:func:`~.change.shape`): the input's loudness, a change within ``strength`` x the input's RMS
and no jump larger than the input's own, so the ascent spends a fixed budget where the unit
responds. Optional regularisers: ``noise_penalty`` (energy of the change), ``hf_penalty``
(its first difference), ``act_penalty`` (the layer's other channels, for selectivity).
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
from tqdm import tqdm

from ..ears.base import Ear
from ..errors import BadRequest
from .change import ChangeParam, largest_jump, shape
from .dsp import bound_loudness
from .target import Target, activations, span

AUDIO_PER_STEP = 0.5
"""Seconds of audio a step's frames hold when ``frames`` is 0 (auto): CREPE's 64 ms windows give 8
frames, musicnn's 3 s windows one. A step on one of musicnn's windows costs an eighth of a step on
eight, and 64 such steps raise a unit more than 16 steps on every window in the same time
(timbral:218 on pink: +2.4 against +1.3 spreads)."""
VISITS = 5.0
"""With ``frames`` 0, a dream reads each frame of the region at least about this many times over its
steps (64 steps of 8 frames read each of a second's 100 five times): a longer input takes more frames a step,
so a whole song is dreamed, not the few seconds 512 random frames would touch (a 20 s drum loop
rose +0.21 spreads with 8 frames a step, where one second rose +6.7)."""
MEASURE_FRAMES = 16
"""The before/after measurement reads at least this many frames (or all there are): one frame of
musicnn's would make a noisy yardstick."""
LOUDNESS_DB = 3.0
"""The dream's output RMS stays within this many dB of its input's (see :func:`dream`)."""


Objective = Callable[[torch.Tensor], torch.Tensor]
"""Activations ``(batch, k, channels, *rest)`` -> a scalar to raise."""


def objective(target: Target, *, act_penalty: float = 0.0, logit: bool = False) -> Objective:
    """The selected channels' mean activation over the position region, minus ``act_penalty`` x
    the mean magnitude of the layer's other channels.

    ``logit``: for a layer of probabilities (an ear's output layer: pitch salience, tags), their
    log-odds. A sigmoid far from firing has no gradient left (CREPE's 883 Hz bin on pink noise
    sits at 1e-5); its logit has as much as anywhere.
    """

    def value(acts: torch.Tensor) -> torch.Tensor:
        region = torch.logit(acts.clamp(1e-30, 1.0 - 1e-7)) if logit else acts
        if acts.dim() > 3:  # a position / frequency axis
            region = acts[:, :, :, span(acts.shape[3], target.position)]
        chosen = list(target.channels) or list(range(acts.shape[2]))
        selected = region[:, :, chosen].mean()
        if act_penalty <= 0.0 or len(chosen) == acts.shape[2]:
            return selected
        others = [c for c in range(acts.shape[2]) if c not in set(chosen)]
        rest = region[:, :, others]
        # Log-odds: the others' own (lower is better); activations: their magnitude.
        return selected - act_penalty * (rest.mean() if logit else rest.abs().mean())

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


PARAMS = ("change", "wave", "spectrum")


def auto_param(ear: Ear) -> str:
    """The parameterisation for "auto": "change" (:class:`~.change.ChangeParam`) for every ear.

    It adds what the input lacks (a chime has two partials: a gain per STFT bin can only
    reweigh them, so units that hear other frequencies could not move) and adapts its step per
    frequency. The ear's front end (:attr:`Ear.front_end <earsight.ears.base.Ear.front_end>`)
    is still checked: auralise relies on it.
    """
    if ear.front_end not in ("wave", "spectrum"):
        raise BadRequest(f"ear {ear.name!r} declares front end {ear.front_end!r}; expected wave or spectrum")
    return "change"


def resolve_param(ear: Ear, param: str) -> str:
    """``param`` as given, or for "auto" the ear's own (:func:`auto_param`)."""
    if param == "auto":
        return auto_param(ear)
    if param not in PARAMS:
        raise BadRequest(f"param must be one of auto, {', '.join(PARAMS)}, got {param!r}")
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
        """How much the selected neurons' activation rose: meaningful for any unit (a ratio of a
        signed mean is not: -0.38 -> 2.65 is no "x-6.97")."""
        return self.after - self.before


def auto_frames(ear: Ear) -> int:
    """Frames per step for ``frames=0``: as many of the ear's windows as :data:`AUDIO_PER_STEP` holds."""
    return max(1, round(AUDIO_PER_STEP * ear.sample_rate / ear.window))


def dream(
    ear: Ear,
    audio: np.ndarray,
    target: Target,
    *,
    steps: int,
    lr: float = 0.05,
    strength: float = 1.0,
    frames: int | None = 0,
    param: str = "auto",
    jitter_samples: int = 64,
    time_mask_fraction: float = 0.1,
    freq_mask_fraction: float = 0.1,
    act_penalty: float = 0.0,
    noise_penalty: float = 0.0,
    hf_penalty: float = 0.0,
    delta: np.ndarray | None = None,
    seed: int = 0,
    measure: bool = True,
    loudness_db: float | None = LOUDNESS_DB,
    visits: float = VISITS,
    progress: bool = False,
) -> DreamResult:
    """Raise the target's activation by ``steps`` steps of Adam on ``audio``'s parameterisation.

    ``audio (samples,)`` float32 at ``ear.sample_rate``; ``frames``: per step, drawn at random
    (0: :func:`auto_frames`, or more where ``steps`` would not read each frame ``visits`` times;
    None: all); ``delta`` (same shape) warm-starts the
    change (live: the previous version, shifted). Each step: parameterisation -> shaping (the
    input's loudness, no jump above the input's largest, :func:`~.change.shape`) -> transforms
    -> ear -> objective - penalties. Adam scales each coordinate's step by its own gradient
    history, so one ``lr`` moves any unit of any ear. ``measure`` adds one forward pass before
    and after (no augmentation). ``loudness_db`` bounds the result's RMS relative to the
    input's once more at the end (None: shaping only). ``progress``: a bar on stderr (the CLI's).
    """
    started = time.perf_counter()
    param = resolve_param(ear, param)
    x0 = torch.from_numpy(np.ascontiguousarray(audio, np.float32)).reshape(1, -1)
    if float(x0.abs().max()) < 1e-6:  # dreaming from digital silence: give the gradient something
        x0 = x0 + 1e-3 * torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    rms = max(float(x0.pow(2).mean().sqrt()), 1e-9)
    jump = largest_jump(x0) * (1.0 - 1e-3)  # a thousandth inside: float32 rounding cannot cross it
    g = torch.Generator().manual_seed(seed)
    start = np.asarray(delta, np.float32) if delta is not None else None
    p: ChangeParam | WaveParam | SpectrumParam
    if param == "spectrum":
        p = SpectrumParam(x0)
    elif param == "wave":
        p = WaveParam(x0, torch.from_numpy(start) if start is not None else None)
    else:
        p = ChangeParam(x0.shape[1], ear.sample_rate, rms, start)

    def shaped() -> torch.Tensor:
        change = p() if isinstance(p, ChangeParam) else p() - x0
        return shape(x0, change, strength=strength, jump=jump)

    transform = compose(jitter(jitter_samples), time_mask(time_mask_fraction), freq_mask(freq_mask_fraction))
    value = objective(target, act_penalty=act_penalty, logit=target.layer == ear.output_layer)
    fixed = objective(target)
    n = max(1, x0.shape[1] // ear.hop)
    region = span(n, target.time)
    cover = math.ceil(visits * (region.stop - region.start) / max(steps, 1)) if visits > 0 else 0
    count = n if frames is None else min(frames or max(auto_frames(ear), cover), n)
    probe = torch.Generator().manual_seed(seed + 1)

    def measured(x: torch.Tensor) -> float:
        # The frames the before/after measurement reads: fixed, so it compares like with like.
        with torch.no_grad():
            probe.manual_seed(seed + 1)
            return float(fixed(activations(ear, x, target, frames=min(n, max(count, MEASURE_FRAMES)), generator=probe)))

    before = measured(x0) if measure else float("nan")
    scale = 1.0
    # The waveform's samples are in the input's units; the others' coordinates are unit-scale.
    optimiser = ScaledAdam(list(p.parameters()), lr=lr * (rms if isinstance(p, WaveParam) else 1.0))
    for step_index in tqdm(range(steps), desc="dream", unit="step", disable=not progress, leave=False):
        x = shaped()
        acts = activations(ear, transform(x, g), target, frames=count, generator=g)
        if step_index == 0:  # penalties relative to the first objective: one weight fits every layer
            scale = max(abs(float(value(acts).detach())), 1e-3)
        loss = -value(acts) / scale
        change = x - x0
        if noise_penalty > 0:
            loss = loss + noise_penalty * change.pow(2).mean() / rms**2
        if hf_penalty > 0:
            loss = loss + hf_penalty * change.diff(dim=-1).pow(2).mean() / rms**2
        optimiser.zero_grad()
        loss.backward()
        if not all(bool(torch.isfinite(q.grad).all()) for q in p.parameters() if q.grad is not None):
            continue  # a bad step is skipped, never taken
        optimiser.step()
        if not isinstance(p, ChangeParam):
            p.project(strength, rms)
    with torch.no_grad():
        out = shaped().reshape(-1)
    if loudness_db is not None:  # by construction already (shape); kept as the last word
        out = torch.from_numpy(bound_loudness(x0.reshape(-1).numpy(), out.numpy(), loudness_db))
    after = measured(out.reshape(1, -1)) if measure else float("nan")
    if measure and after < before:
        # A line search back toward the input: the ascent saw random frames under random
        # transforms; on the measured frames a fraction of its change may do better than all.
        change = out - x0.reshape(-1)
        for fraction in (0.7, 0.5, 0.3, 0.15):
            trial = x0.reshape(-1) + fraction * change
            value_at = measured(trial.reshape(1, -1))
            if value_at > after:
                out, after = trial, value_at
    result = out.numpy().astype(np.float32)
    return DreamResult(
        result, result - x0.reshape(-1).numpy(), before, after, steps, time.perf_counter() - started
    )


class ScaledAdam:
    """Adam with one second moment for all coordinates: the step adapts to the unit's gradient
    scale (one rate moves a unit whose gradients are 1e-6 and one whose are 1e3), but keeps the
    gradient's shape. Per-coordinate Adam moves every coefficient about ``lr`` a step, however
    little it matters: the change's spectrum would be the prior's, not the unit's."""

    def __init__(self, params: list[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.99)) -> None:
        self.params, self.lr, self.betas = params, lr, betas
        self.moments = [torch.zeros_like(q) for q in params]
        self.square = 0.0
        self.count = 0

    def zero_grad(self) -> None:
        for q in self.params:
            q.grad = None

    @torch.no_grad()
    def step(self) -> None:
        b1, b2 = self.betas
        self.count += 1
        grads = [q.grad if q.grad is not None else torch.zeros_like(q) for q in self.params]
        mean_square = sum(float(g.pow(2).sum()) for g in grads) / max(sum(g.numel() for g in grads), 1)
        self.square = b2 * self.square + (1 - b2) * mean_square
        scale = math.sqrt(self.square / (1 - b2**self.count)) + 1e-30
        for q, m, g in zip(self.params, self.moments, grads, strict=True):
            m.mul_(b1).add_(g, alpha=1 - b1)
            q.sub_(self.lr * m / (1 - b1**self.count) / scale)


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
