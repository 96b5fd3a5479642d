"""A causal CPC ear after Immersions (Herrmann, NeurIPS 2019 creativity workshop).

The network, end to end in torch so it stays differentiable (dream / input optimisation):

    audio 16 kHz ─► causal log spectrum (2048-sample Hann window, hop 160 = 100 frames/s,
                    85 bands a semitone apart from 55 Hz to 7 kHz; the first ears: 80 mel bands)
      ─► conv1 2-D (16 ch × 43 freq), time stride 2 ─► 50 frames/s
      ─► conv2 2-D (32 × 22) ─► conv3 2-D (64 × 11) ─► z: dense (256,)      the encoder
      ─► ar: GRU (256,)                                                      the context
      ─► heads W_k: predict z at 0.24 to 1 s ahead (InfoNCE, see train/objective.py)

Every layer is causal and written as a *step* on a chunk of new input plus a small cached
state (the input history a convolution still needs, the GRU hidden state), so one hop costs
work proportional to the hop and a stream cut into any blocks gives the frames of one
offline pass. Offline analysis, streaming and :meth:`CPCEar.forward` share that code; they
differ only in where the state comes from.

Convolutions are normalised per frame (a group norm over channels and frequencies of one
time step), never over time, which keeps them causal and streaming-safe.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import NotFound
from ..paths import models_dir
from .base import Ear, Frames, Layer
from .cpcstream import NumpyCPC
from .weights import reading


@dataclass
class CPCConfig:
    """Everything that defines the network's shape; stored as JSON in the weights' metadata."""

    sample_rate: int = 16000
    n_fft: int = 2048
    """The front end's window: 128 ms, which resolves a semitone from about 260 Hz (lower notes by their harmonics)."""
    fe_hop: int = 160
    n_mels: int = 85
    """Bands of the front end (semitones or mel, see :attr:`scale`)."""
    f_min: float = 55.0
    f_max: float = 7040.0
    scale: str = "log"
    """``log``: bands at equal ratios from ``f_min`` to ``f_max`` (85 over 7 octaves: one per semitone
    from A1 to A8, a constant-Q-like front end that resolves pitch); ``mel``: triangular mel bands
    (:data:`LOGMEL`, the first ears' front end)."""
    channels: tuple[int, ...] = (16, 32, 64)
    kernels: tuple[tuple[int, int], ...] = ((4, 5), (3, 3), (3, 3))
    """(time, frequency) kernel of each encoder conv."""
    strides: tuple[tuple[int, int], ...] = ((2, 2), (1, 2), (1, 2))
    """(time, frequency) stride of each encoder conv; the product of time strides sets the hop."""
    z_dim: int = 256
    ar_dim: int = 256
    horizons: tuple[int, ...] = (12, 20, 35, 50)
    """Prediction offsets in encoder frames (at 50 frames/s: 0.24, 0.4, 0.7, 1.0 s). Each lies beyond
    the encoder's receptive field (:meth:`overlap` is zero): the target shares no input with what
    the context has heard, so predicting it cannot be copying."""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def hop(self) -> int:
        return self.fe_hop * math.prod(s[0] for s in self.strides)

    @property
    def receptive_field(self) -> int:
        """Samples one ``z`` frame depends on: frame ``t`` sees the ones before ``(t + 1) * hop``."""
        frames = 1  # in front-end frames
        for (kt, _), (st, _) in reversed(list(zip(self.kernels, self.strides, strict=True))):
            frames = (frames - 1) * st + kt
        return (frames - 1) * self.fe_hop + self.n_fft

    def overlap(self, horizon: int) -> int:
        """Samples the target ``z[t + horizon]`` shares with the input the context ``ar[t]`` has heard."""
        return max(0, self.receptive_field - horizon * self.hop)

    @property
    def min_horizon(self) -> int:
        """The nearest horizon (frames) whose target shares no input with the context."""
        return -(-self.receptive_field // self.hop)

    @property
    def freq_sizes(self) -> list[int]:
        """Frequency size after each conv (padding ``k // 2`` on both sides)."""
        sizes, f = [], self.n_mels
        for (_, kf), (_, sf) in zip(self.kernels, self.strides, strict=True):
            f = (f + 2 * (kf // 2) - kf) // sf + 1
            sizes.append(f)
        return sizes

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> CPCConfig:
        raw = json.loads(text)
        raw.setdefault("scale", "mel")  # weights from before the semitone front end (their JSON has the rest)
        raw["channels"] = tuple(raw["channels"])
        raw["kernels"] = tuple(tuple(k) for k in raw["kernels"])
        raw["strides"] = tuple(tuple(s) for s in raw["strides"])
        raw["horizons"] = tuple(raw["horizons"])
        return cls(**raw)


LOGMEL: dict[str, object] = {"n_fft": 1024, "n_mels": 80, "f_min": 40.0, "f_max": 8000.0, "scale": "mel"}
"""The classic front end (80 mel bands, 64 ms window), the first CPC ears' and the probes' baseline."""


def mel_filterbank(
    *, sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float
) -> Tensor:
    """Slaney-style triangular mel filters (HTK mel scale), shape ``(n_fft // 2 + 1, n_mels)``."""

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(
        np.linspace(hz_to_mel(np.array(f_min)), hz_to_mel(np.array(f_max)), n_mels + 2)
    )
    lower = (freqs[:, None] - edges[None, :-2]) / (edges[1:-1] - edges[:-2])[None, :]
    upper = (edges[None, 2:] - freqs[:, None]) / (edges[2:] - edges[1:-1])[None, :]
    fb = np.maximum(0.0, np.minimum(lower, upper))
    # Area normalisation keeps wide high bands from dominating the log energies.
    fb *= (2.0 / (edges[2:] - edges[:-2]))[None, :]
    return torch.from_numpy(fb.astype(np.float32))


def log_filterbank(
    *, sample_rate: int, n_fft: int, n_bands: int, f_min: float, f_max: float
) -> Tensor:
    """Triangular bands at equal frequency ratios, centres ``f_min`` ... ``f_max``: ``(n_fft // 2 + 1, n_bands)``.

    Each triangle reaches its neighbours' centres on a log axis, but is at least two FFT bins
    wide either side, so low bands narrower than the FFT's resolution still sum real bins
    (neighbouring low bands then overlap; a conv over bands copes). Area-normalised as the mel bank.
    """
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    centres = f_min * (f_max / f_min) ** (np.arange(-1, n_bands + 1) / (n_bands - 1))
    bin_hz = sample_rate / n_fft
    left = np.minimum(centres[:-2], centres[1:-1] - 2 * bin_hz)
    right = np.maximum(centres[2:], centres[1:-1] + 2 * bin_hz)
    mid = centres[1:-1]
    lower = (freqs[:, None] - left[None, :]) / (mid - left)[None, :]
    upper = (right[None, :] - freqs[:, None]) / (right - mid)[None, :]
    fb = np.maximum(0.0, np.minimum(lower, upper))
    fb /= fb.sum(0, keepdims=True)
    return torch.from_numpy(fb.astype(np.float32))


class CausalLogMel(nn.Module):
    """Causal log spectrum in bands (semitone or mel): frame ``j`` sees the ``n_fft`` samples ending at ``(j + 1) * hop``.

    State: the last ``n_fft - hop`` samples, shape ``(batch, n_fft - hop)`` (zeros after reset).
    """

    window: Tensor
    filterbank: Tensor
    mean: Tensor
    std: Tensor

    def __init__(self, cfg: CPCConfig) -> None:
        super().__init__()
        self.n_fft, self.hop = cfg.n_fft, cfg.fe_hop
        self.register_buffer(
            "window", torch.hann_window(cfg.n_fft, periodic=True), persistent=False
        )
        bands = {"sample_rate": cfg.sample_rate, "n_fft": cfg.n_fft, "f_min": cfg.f_min, "f_max": cfg.f_max}
        if cfg.scale == "mel":
            fb = mel_filterbank(n_mels=cfg.n_mels, **bands)  # type: ignore[arg-type]
        elif cfg.scale == "log":
            fb = log_filterbank(n_bands=cfg.n_mels, **bands)  # type: ignore[arg-type]
        else:
            raise ValueError(f"front-end scale {cfg.scale!r}: expected 'mel' or 'log'")
        self.register_buffer("filterbank", fb, persistent=False)
        # Per-mel-bin standardisation, measured on training data (train.py) and saved with the weights.
        self.register_buffer("mean", torch.zeros(cfg.n_mels))
        self.register_buffer("std", torch.ones(cfg.n_mels))

    def initial_state(self, batch: int, device: torch.device | None = None) -> Tensor:
        return torch.zeros(batch, self.n_fft - self.hop, device=device)

    def raw(self, frames: Tensor) -> Tensor:
        """``(..., n_fft)`` windows -> ``(..., n_mels)`` natural-log mel energies (unnormalised)."""
        spec = torch.fft.rfft(frames * self.window, dim=-1)
        power = torch.view_as_real(spec).square().sum(-1)
        return torch.log(power @ self.filterbank + 1e-6)

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """``x (batch, samples)`` -> ``(batch, frames, n_mels)`` and the new state."""
        buf = torch.cat([state, x], dim=1)
        n = (buf.shape[1] - self.n_fft) // self.hop + 1 if buf.shape[1] >= self.n_fft else 0
        if n > 0:
            frames = buf[:, : (n - 1) * self.hop + self.n_fft].unfold(1, self.n_fft, self.hop)
            out = (self.raw(frames) - self.mean) / self.std
        else:
            out = buf.new_zeros(buf.shape[0], 0, self.filterbank.shape[1])
        return out, buf[:, n * self.hop :]


class CausalConv2d(nn.Module):
    """2-D conv over (time, frequency), causal in time, + per-frame group norm + ReLU.

    Input/output ``(batch, channels, time, freq)``. State: the last ``kt - st`` input frames
    (left zero padding before the first call), so output ``k`` sees inputs ``k*st + st - kt .. k*st + st - 1``.
    """

    def __init__(
        self, c_in: int, c_out: int, kernel: tuple[int, int], stride: tuple[int, int]
    ) -> None:
        super().__init__()
        self.kt, self.kf = kernel
        self.st, self.sf = stride
        if self.kt < self.st:
            raise ValueError("time kernel must be at least the time stride")
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(0, self.kf // 2))
        self.norm = nn.GroupNorm(1, c_out)
        self.c_in = c_in

    def initial_state(self, batch: int, n_freq: int, device: torch.device | None = None) -> Tensor:
        return torch.zeros(batch, self.c_in, self.kt - self.st, n_freq, device=device)

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        buf = torch.cat([state, x], dim=2)
        t = buf.shape[2]
        n = (t - self.kt) // self.st + 1 if t >= self.kt else 0
        if n == 0:
            c_out = self.conv.out_channels
            f_out = (buf.shape[3] + 2 * (self.kf // 2) - self.kf) // self.sf + 1
            return buf.new_zeros(buf.shape[0], c_out, 0, f_out), buf
        y = self.conv(buf[:, :, : (n - 1) * self.st + self.kt])
        b, c, tt, f = y.shape
        # Normalise each time frame on its own (channels × freq), never across time: stays causal.
        y = (
            self.norm(y.permute(0, 2, 1, 3).reshape(b * tt, c, f))
            .reshape(b, tt, c, f)
            .permute(0, 2, 1, 3)
        )
        return F.relu(y), buf[:, :, n * self.st :]


class CPCNet(nn.Module):
    """The whole network. ``step`` maps a chunk of audio and a state to every layer's new frames."""

    def __init__(self, cfg: CPCConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.frontend = CausalLogMel(cfg)
        convs, c_in = [], 1
        for c_out, k, s in zip(cfg.channels, cfg.kernels, cfg.strides, strict=True):
            convs.append(CausalConv2d(c_in, c_out, k, s))
            c_in = c_out
        self.convs = cast("list[CausalConv2d]", nn.ModuleList(convs))
        self.freq_sizes = cfg.freq_sizes
        self.to_z = nn.Linear(cfg.channels[-1] * self.freq_sizes[-1], cfg.z_dim)
        self.z_norm = nn.LayerNorm(cfg.z_dim)
        self.gru = nn.GRU(cfg.z_dim, cfg.ar_dim, batch_first=True)
        self.heads = cast(
            "list[nn.Linear]",
            nn.ModuleList(nn.Linear(cfg.ar_dim, cfg.z_dim, bias=False) for _ in cfg.horizons),
        )

    @property
    def layer_names(self) -> list[str]:
        return [f"conv{i + 1}" for i in range(len(self.convs))] + ["z", "ar"]

    def initial_state(self, batch: int, device: torch.device | None = None) -> list[Tensor]:
        state = [self.frontend.initial_state(batch, device)]
        n_freq = [self.cfg.n_mels, *self.freq_sizes[:-1]]
        state += [
            conv.initial_state(batch, f, device) for conv, f in zip(self.convs, n_freq, strict=True)
        ]
        state.append(torch.zeros(1, batch, self.cfg.ar_dim, device=device))
        return state

    def step(self, audio: Tensor, state: list[Tensor]) -> tuple[dict[str, Tensor], list[Tensor]]:
        """``audio (batch, samples)`` -> layer -> ``(batch, frames, *shape)``, new state.

        Frames come out only for complete hops; leftover samples wait in the state.
        """
        new_state: list[Tensor] = []
        x, s = self.frontend.step(audio, state[0])
        new_state.append(s)
        h = x.unsqueeze(1)  # (batch, 1, time, mels)
        out: dict[str, Tensor] = {}
        for i, conv in enumerate(self.convs):
            h, s = conv.step(h, state[1 + i])
            new_state.append(s)
            out[f"conv{i + 1}"] = h.permute(0, 2, 1, 3)  # (batch, time, channels, freq)
        b, c, t, f = h.shape
        z = F.relu(self.z_norm(self.to_z(h.permute(0, 2, 1, 3).reshape(b, t, c * f))))
        out["z"] = z
        if t > 0:
            ar, hidden = self.gru(z, state[-1])
        else:
            ar, hidden = z.new_zeros(b, 0, self.cfg.ar_dim), state[-1]
        out["ar"] = ar
        new_state.append(hidden)
        return out, new_state

    def forward(self, audio: Tensor) -> dict[str, Tensor]:
        """From a reset state: ``(batch, samples)`` -> layer -> ``(batch, samples // hop, *shape)``."""
        out, _ = self.step(audio, self.initial_state(audio.shape[0], audio.device))
        return out


class CPCEar(Ear):
    """The CPC network as an :class:`Ear`: streaming keeps the network's state between blocks."""

    name = "cpc"
    description = "earsight CPC: semitone bands, causal conv encoder + GRU, trained without labels to predict music 0.24-1 s ahead"
    output_layer = None
    labels = None
    latency_layer = "z"
    """The encoder's output: ``ar`` spreads an input over the GRU's fading memory."""
    front_end = "spectrum"  # sonification hook (see Ear): the causal log spectrum in bands

    def __init__(self, net: CPCNet) -> None:
        self.net = net.eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        cfg = net.cfg
        self.cfg = cfg
        self.sample_rate = cfg.sample_rate
        self.hop = cfg.hop
        self.window = cfg.receptive_field
        # The conv encoder weighs its whole window; its middle is a fair single number for
        # "where a sample weighs most". The GRU adds unbounded (fading) memory on top.
        self.latency = self.window // 2
        # A strided conv's window starts at its output position times the stride; the layout
        # centres windows between strides, so one more position makes them a superset of the real.
        layers = [
            Layer(f"conv{i + 1}", (c, f), "channel", "conv", kernel=kf + (sf > 1))
            for i, (c, f, (_, kf), (_, sf)) in enumerate(
                zip(cfg.channels, cfg.freq_sizes, cfg.kernels, cfg.strides, strict=True)
            )
        ]
        layers.append(Layer("z", (cfg.z_dim,), "unit", "dense"))
        layers.append(Layer("ar", (cfg.ar_dim,), "unit", "recurrent"))
        self.layers = tuple(layers)
        self.reset()

    def reset(self) -> None:
        self._stream = NumpyCPC(self.net)  # weights laid out afresh: training may have changed them
        self._state = self._stream.initial_state()
        # Samples of an unfinished hop wait here, so blocks smaller than a hop cost no step.
        self._pending = np.zeros(0, np.float32)

    def process(self, block: np.ndarray) -> Frames:
        pending = np.concatenate([self._pending, np.asarray(block, np.float32).reshape(-1)])
        n = pending.shape[0] // self.hop * self.hop
        self._pending = pending[n:]
        if n == 0:
            return {layer.name: np.zeros((0, *layer.shape), np.float32) for layer in self.layers}
        out, self._state = self._stream.step(pending[:n], self._state)
        return out

    def analyse(self, audio: np.ndarray, *, chunk_seconds: float = 60.0) -> Frames:
        """All frames of ``audio`` from a reset state, without touching the streaming state.

        Long signals go through in chunks of ``chunk_seconds`` (the state carries over, so the
        result is the same) to bound memory: the conv activations of a whole hour would not fit.
        """
        audio = np.ascontiguousarray(audio, dtype=np.float32).reshape(-1)
        n = audio.shape[0] // self.hop
        audio = audio[: n * self.hop]
        chunk = max(1, int(chunk_seconds * self.sample_rate) // self.hop) * self.hop
        stream = NumpyCPC(self.net)
        state = stream.initial_state()
        parts: dict[str, list[np.ndarray]] = {layer.name: [] for layer in self.layers}
        for start in range(0, max(audio.shape[0], 1), chunk):
            out, state = stream.step(audio[start : start + chunk], state)
            for name, value in out.items():
                parts[name].append(value)
        return {name: np.concatenate(values) for name, values in parts.items()}

    def forward(self, audio: Tensor) -> dict[str, Tensor]:
        """Differentiable: ``(batch, samples)`` -> layer -> ``(batch, samples // hop, *shape)``."""
        return self.net(audio)


def save(net: CPCNet, path: str | Path, *, metadata: dict[str, str] | None = None) -> None:
    """Weights as safetensors; the config (JSON) and ``metadata`` in the header — no pickle."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    save_file(
        tensors,
        str(path),
        metadata={**(metadata or {}), "config": net.cfg.to_json(), "format": "earsight-cpc-1"},
    )


def load_net(path: str | Path) -> CPCNet:
    """Build a :class:`CPCNet` from a safetensors file written by :func:`save`."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with reading(path, "CPC", "train it again: earsight train AUDIO... --out NAME") as path:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if "config" not in meta:
            raise NotFound(f"{path} has no CPC config in its metadata")
        net = CPCNet(CPCConfig.from_json(meta["config"]))
        net.load_state_dict(load_file(str(path)))
    return net


def load(path: str | Path | None = None) -> CPCEar:
    """The shipped ear (``models/cpc.safetensors``), or the weights at ``path``."""
    return CPCEar(load_net(path if path is not None else models_dir() / "cpc.safetensors"))
