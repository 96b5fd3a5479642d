"""The interface every ear shares, and a base for ears that look at a sliding window.

An ear turns mono float32 audio at ``sample_rate`` into *frames*: every ``hop`` samples it
emits one activation frame per layer. Frame ``k`` is available once sample ``(k + 1) * hop``
has arrived and depends only on samples before it (ears are causal), so streaming a file
block by block gives exactly the frames of one offline pass.

Every ear is a :class:`~earsight.stage.Stage` (``process``, ``reset``, ``latency``), so it chains
after the resampler; ``tests/test_ear_contract.py`` holds every registered ear to the contract.
"""

from __future__ import annotations

import copy
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from ..errors import BadRequest

Frames = dict[str, np.ndarray]
"""Layer name -> array of shape (n_frames, *layer.shape), float32."""


@dataclass(frozen=True)
class Layer:
    """One layer of an ear as the outside world sees it.

    ``shape`` is the shape of one frame of this layer, e.g. ``(channels,)`` or
    ``(channels, frequencies)``; a *neuron* (unit) is one element. ``kind`` tells the
    layout how the layer connects to the one before it: "conv" (local in the last axis),
    "dense" (all to all) or "recurrent". ``kernel``, for a conv: how many positions of the layer
    before one of its positions reads (the kernel, plus what a pooling after it adds; 0: not
    declared, the layout assumes a kernel of 5).
    """

    name: str
    shape: tuple[int, ...]
    unit: str = "channel"
    kind: str = "conv"
    kernel: int = 0

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def channels(self) -> int:
        return self.shape[0]


class Ear(ABC):
    """A neural ear. Subclasses set the class attributes and implement the three methods."""

    name: str = "ear"
    description: str = ""
    sample_rate: int = 16000
    hop: int = 160
    window: int = 1024
    """Samples one frame looks at (receptive field), at ``sample_rate``."""
    latency: int = 512
    """Samples from an input sample to the frame where it weighs most (declared, at ``sample_rate``).

    Measured with impulses (``tests/test_ear_contract.py``): the mean delay from an impulse to
    the end of each frame, weighted by how much the impulse changes that frame's
    :attr:`latency_layer`; it must agree with this to within half a hop.
    """
    layers: tuple[Layer, ...] = ()
    inference_tolerance: float = 1e-5
    """How far :meth:`process` / :meth:`analyse` may be from :meth:`forward`, relative to each layer's
    largest value: float rounding, unless the ear infers in lower precision (int8 CREPE), whose
    own tests then hold what matters (its pitch) to a known bound."""
    labels: tuple[str, ...] | None = None
    """Names of the units of the ``output`` layer, for ears that tag."""
    output_layer: str | None = None
    """The layer whose units are probabilities for ``labels`` (tags) or pitch bins (pitch)."""

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop

    # --- several tracks with one ear (earsight.listen)

    def family(self) -> object:
        r"""A token this ear shares with its :meth:`twin`\ s (and no other ear): the same weights."""
        token = self.__dict__.get("_family")
        if token is None:
            token = self.__dict__["_family"] = object()
        return token

    def twin(self) -> Ear:
        """A copy that shares this ear's weights and has streaming state of its own, from a reset:
        a second track listening with the same model costs no second copy of it."""
        other = copy.copy(self)  # shallow: the networks (and their weights) are shared
        other.__dict__["_family"] = self.family()
        other.reset()  # each ear's reset makes its streaming state anew
        return other

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise BadRequest(f"ear {self.name!r} has no layer {name!r} (layers: {', '.join(self.layer_names)})")

    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def info(self) -> dict[str, object]:
        return {
            "name": self.name,
            "sample_rate": self.sample_rate,
            "hop": self.hop,
            "frame_rate": self.frame_rate,
            "window": self.window,
            "latency": self.latency,
            "layers": [(layer.name, layer.shape, layer.unit, layer.kind) for layer in self.layers],
            "labels": list(self.labels or ()),
        }

    # --- stage contract (earsight.stage.Stage: rate_in, rate_out, latency, process, reset)

    latency_layer: str | None = None
    """The layer in which :attr:`latency` is measured, whose frames hear exactly the :attr:`window`
    samples before their end; None: the last layer."""

    @property
    def rate_in(self) -> int:
        return self.sample_rate

    @property
    def rate_out(self) -> int:
        """Frames are stamped on the input clock (frame ``k`` at sample ``(k + 1) * hop``)."""
        return self.sample_rate

    def stream(self, block: np.ndarray) -> Frames:
        """The same as :meth:`process` (the name the listener and the tools call)."""
        return self.process(block)

    # --- declared outputs (what features, streams and plots read without knowing the ear)

    pitch_layer: str | None = None
    """The layer :meth:`pitch` decodes; None when the ear hears no pitch."""

    pitch_latency: int | None = None
    """Samples from a tone's onset to the end of the first frame whose pitch confidence exceeds 0.5
    (:func:`pitch_onset_latency`: a 440 Hz sine at -6 dBFS, averaged over where in a hop the onset
    falls): when the ``pitch`` stream shows a new note. None when the ear hears no pitch."""

    def pitch(self, frames: Frames) -> tuple[np.ndarray, np.ndarray] | None:
        """Pitch of each frame: layer -> ``(n, *shape)`` -> ``(hz, confidence)``, each ``(n,)``.

        Confidence is 0-1. None when the ear hears no pitch (:attr:`pitch_layer` is None).
        """
        return None

    # --- what each ear implements

    @abstractmethod
    def reset(self) -> None:
        """Forget streaming state, as if no audio had been heard."""

    @abstractmethod
    def process(self, block: np.ndarray) -> Frames:
        """Feed the next mono samples (any length, float32 at ``sample_rate``); return the frames they complete (possibly none)."""

    @abstractmethod
    def analyse(self, audio: np.ndarray) -> Frames:
        """Offline: all ``len(audio) // hop`` frames of a whole signal, from a reset state. Equals concatenated ``process``."""

    @abstractmethod
    def forward(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        """Differentiable pass for sonification: ``(batch, samples)`` -> layer -> ``(batch, frames, *shape)``."""

    # --- sonification hooks: what earsight.sonify asks of an ear instead of checking its class.
    # The defaults suit an ear with nothing special to say; override what differs.

    front_end: str = "wave"
    """What the network looks at first: "wave" (the waveform itself: CREPE) or "spectrum" (an FFT
    front end: musicnn, CPC). Dream's ``param auto`` optimises the matching parameterisation;
    auralise divides a spectral ear's reconstruction by the input's spectrum."""

    def upto(self, windows: torch.Tensor, layer: str) -> torch.Tensor | None:
        """A windowed ear's ``layer`` on ``windows (n, window)`` -> ``(n, *layer.shape)``, computing
        only the network up to it, differentiably; None (the default): no shortcut, the caller runs
        the whole network."""
        return None

    def network_input(
        self, windows: torch.Tensor, layer: str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Where the deconvnet stops on the way back, for ``windows (n, window)``: ``(leaf, acts,
        gain)``, the network's input as a leaf tensor, ``layer`` computed from it ``(n, *shape)``,
        and the gain ``(n, 1)`` from the leaf back to raw audio. None (the default): the raw
        windows are the network's input, gain 1."""
        return None

    def resting(self, layer: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Each channel's exact resting level in ``layer`` (its value where the unit does not fire)
        and the gain from the unit's ReLU to the layer, both ``(channels,)``; None (the default):
        unknown, the auraliser takes each channel's minimum over the signal."""
        return None

    # --- layout hooks ----------------------------------------------------------------------
    # What the layout cache keys on (earsight.layout.cache): declared by the ear, not guessed.

    def fingerprint(self) -> str:
        """Hex digest that changes whenever this ear's frames may: its timing, layers and weights.

        The default hashes the declared structure (name, sample rate, hop, window, layer table)
        and the state (parameters and buffers) of every ``torch.nn.Module`` the ear holds
        as an attribute. It is computed afresh on each call: training changes weights in place.
        Override it when an ear knows a cheaper identity of its weights.
        """
        structure = {
            "name": self.name,
            "sample_rate": self.sample_rate,
            "hop": self.hop,
            "window": self.window,
            "layers": [(layer.name, list(layer.shape), layer.unit, layer.kind) for layer in self.layers],
        }
        h = hashlib.sha256(json.dumps(structure, sort_keys=True).encode())
        for attr, module in list(vars(self).items()):  # a snapshot: another thread may add to it
            if not isinstance(module, torch.nn.Module):
                continue
            for key, tensor in module.state_dict().items():
                t = tensor.detach().cpu().contiguous()
                h.update(f"{attr}.{key}:{t.dtype}:{tuple(t.shape)}".encode())
                h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())  # raw bytes: any dtype
        return h.hexdigest()


class WindowedEar(Ear):
    """An ear whose frame ``k`` is a pure function of the ``window`` samples ending at ``(k+1)*hop``.

    Subclasses implement :meth:`frames` on a batch of windows; streaming and offline share it.
    """

    batch: int = 256
    batches_twins: bool = True
    """Whether :meth:`infer` is a pure function of each window, so twins' windows may run as one
    batch (:func:`process_together`); False for an ear that reuses work between its own windows."""

    def __init__(self) -> None:
        self._buffer = np.zeros(self.window - self.hop, np.float32)

    @abstractmethod
    def frames(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(n, window)`` -> layer -> ``(n, *shape)``."""

    def infer(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """What streaming and analysis run (under inference mode): :meth:`frames` unless an ear
        has a faster inference-only path that gives the same frames to rounding."""
        return self.frames(windows)

    def reset(self) -> None:
        self._buffer = np.zeros(self.window - self.hop, np.float32)

    def _run(self, windows: torch.Tensor) -> Frames:
        out: dict[str, list[np.ndarray]] = {layer.name: [] for layer in self.layers}
        with torch.inference_mode():
            for start in range(0, windows.shape[0], self.batch):
                for name, value in self.infer(windows[start : start + self.batch]).items():
                    out[name].append(value.float().numpy())
        return {
            layer.name: (
                np.concatenate(out[layer.name])
                if out[layer.name]
                else np.zeros((0, *layer.shape), np.float32)
            )
            for layer in self.layers
        }

    def _windows(self, signal: np.ndarray) -> torch.Tensor:
        """Windows of a signal that starts with ``window - hop`` samples of history."""
        t = torch.from_numpy(np.ascontiguousarray(signal, dtype=np.float32))
        if t.shape[0] < self.window:
            return t.new_zeros((0, self.window))
        return t.unfold(0, self.window, self.hop)

    def process(self, block: np.ndarray) -> Frames:
        return self._run(self._take(block))

    def _take(self, block: np.ndarray) -> torch.Tensor:
        """The windows ``block`` completes (``(n, window)``); the rest waits in the buffer."""
        signal = np.concatenate([self._buffer, np.asarray(block, np.float32).reshape(-1)])
        n = (signal.shape[0] - (self.window - self.hop)) // self.hop
        windows = self._windows(signal[: self.window - self.hop + n * self.hop])
        self._buffer = signal[n * self.hop :]
        return windows

    def analyse(self, audio: np.ndarray) -> Frames:
        audio = np.asarray(audio, np.float32).reshape(-1)
        n = audio.shape[0] // self.hop
        signal = np.concatenate([np.zeros(self.window - self.hop, np.float32), audio[: n * self.hop]])
        return self._run(self._windows(signal))

    def forward(self, audio: torch.Tensor) -> dict[str, torch.Tensor]:
        batch, samples = audio.shape
        padded = torch.nn.functional.pad(audio, (self.window - self.hop, 0))
        windows = padded.unfold(1, self.window, self.hop)  # (batch, n, window)
        n = windows.shape[1]
        out = self.frames(windows.reshape(batch * n, self.window))
        return {k: v.reshape(batch, n, *v.shape[1:]) for k, v in out.items()}


def batchable(ears: Sequence[Ear]) -> bool:
    """Whether these ears are twins whose windows may run as one batch."""
    first = ears[0] if ears else None
    return (len(ears) > 1 and isinstance(first, WindowedEar) and first.batches_twins
            and all(type(e) is type(first) and e.family() is first.family() for e in ears))


def process_together(ears: Sequence[Ear], blocks: Sequence[np.ndarray]) -> list[Frames]:
    """Each ear's :meth:`~Ear.process` of its block; twins of a :class:`WindowedEar` that
    :attr:`~WindowedEar.batches_twins` run their windows as one batch (one pass of the network for
    every track that hears with it)."""
    if not batchable(ears):
        return [ear.process(block) for ear, block in zip(ears, blocks, strict=True)]
    twins = cast(Sequence[WindowedEar], ears)
    windows = [ear._take(block) for ear, block in zip(twins, blocks, strict=True)]
    frames = twins[0]._run(torch.cat(windows))
    out, start = [], 0
    for w in windows:
        out.append({name: values[start : start + w.shape[0]] for name, values in frames.items()})
        start += w.shape[0]
    return out


def pitch_onset_latency(ear: Ear, hz: float = 440.0, amplitude: float = 0.5, phases: int = 16) -> float:
    """Measure :attr:`Ear.pitch_latency`: the mean, over ``phases`` onsets spread evenly across a hop,
    of the samples from a sine's onset (after a window of silence) to the end of the first frame
    that is confident (> 0.5) about it."""
    delays = []
    for k in range(phases):
        onset = ear.window + k * ear.hop // phases
        t = np.arange(2 * ear.window) / ear.sample_rate
        audio = np.concatenate([np.zeros(onset, np.float32), (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)])
        heard = ear.pitch(ear.analyse(audio))
        if heard is None:
            raise BadRequest(f"ear {ear.name!r} does not hear pitch")
        ends = (np.arange(heard[1].shape[0]) + 1) * ear.hop
        confident = np.flatnonzero((heard[1] > 0.5) & (ends > onset))
        if confident.size == 0:
            raise BadRequest(f"ear {ear.name!r} never grew confident about a {hz:g} Hz sine")
        delays.append(ends[confident[0]] - onset)
    return float(np.mean(delays))
