"""musicnn (Pons & Serra, 2019), the MagnaTagATune model, ported to torch.

The weights are the ``MTT_musicnn`` TensorFlow checkpoint that the ``musicnn`` wheel ships; they
are read with :mod:`earsight.ears.tfcheckpoint` (no TensorFlow), converted to torch layout once and
cached as safetensors under :func:`earsight.paths.cache_dir`.

The network (``musicnn/models.py``, ``build_musicnn`` with 64 mid-end filters, 200 back-end units):

- input: log-mel patch ``(187 frames, 96 bands)``: 16 kHz, n_fft 512, hop 256, power, librosa's
  Slaney mel filterbank, ``log10(10000 x + 1)``; batch norm over the single input channel.
- front end: "timbral" convs spanning 7 frames x 38 or 67 bands (204 filters each) and
  "temporal" convs spanning 128, 64, 32 frames x 1 band (51 filters each); ReLU, batch norm,
  max over frequency -> 561 channels x 187 frames.
- mid end: three temporal convs (7 frames, 64 filters), ReLU, batch norm, the last two residual;
  dense connections: the back end sees front end + all three -> 753 channels.
- back end: max and mean over time, interleaved per channel (TensorFlow flattens
  ``concat([max, mean], axis=2)`` of shape ``(753, 2)`` row-major) -> 1506; batch norm, dense 200
  + ReLU, batch norm, dense 50, sigmoid.

As an :class:`~earsight.ears.base.Ear` it looks at 48128 samples (exactly 187 STFT frames without
centre padding, 3.008 s) every 8192 samples (0.512 s, 32 STFT hops). Layers report one vector per
window: each front- and mid-end channel as its ReLU output's maximum over the window (how strongly
the filter fired anywhere in it), ``pool`` (the back end's input), the 200 penultimate ReLU units
and the 50 tag probabilities.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .base import Frames, Layer, WindowedEar
from .musicnncheckpoint import (
    checkpoint_prefix as checkpoint_prefix,  # re-exported: the ear's own API
)
from .musicnncheckpoint import converted_weights
from .weights import reading

SAMPLE_RATE = 16000
N_FFT = 512
STFT_HOP = 256
N_MELS = 96
N_FRAMES = 187
"""Mel frames per patch: musicnn's 3 s input (``time_to_frames(3) + 1``)."""
WINDOW = (N_FRAMES - 1) * STFT_HOP + N_FFT
"""48128 samples give exactly 187 uncentred STFT frames."""
HOP = 32 * STFT_HOP
"""8192 samples (0.512 s, ~2 frames/s): a whole number of STFT hops, so every window's mel frames
lie on one fixed grid; fine enough that the tags follow the music within half a second (they were
trained on 3 s and change slowly, so faster would mostly repeat itself); cheap enough (one window
is ~1.3 GMAC, ~60 ms of one core here: ~12 % of a core at this rate)."""
BN_EPS = 1e-3
"""``tf.compat.v1.layers.batch_normalization``'s default epsilon."""

MTT_LABELS: tuple[str, ...] = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
    "weird", "country", "metal", "female voice", "choral",
)  # fmt: skip
"""The 50 MagnaTagATune tags in the order of the output units (``musicnn/configuration.py``)."""


# --- the mel front end ---------------------------------------------------------------------------


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa ``htk=False``): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    safe = np.maximum(hz, min_log_hz)  # keeps log() finite where the linear branch is taken
    return np.where(hz >= min_log_hz, min_log_mel + np.log(safe / min_log_hz) / logstep, hz / f_sp)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, np.float64)
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(
        mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel
    )


def mel_filterbank(
    *, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS
) -> np.ndarray:
    """librosa's ``filters.mel(sr, n_fft, n_mels)`` with its defaults then (fmin 0, fmax sr/2,
    Slaney scale, area normalisation ``norm=1``/"slaney"): ``(n_mels, n_fft // 2 + 1)`` float32.

    Triangles between consecutive mel-spaced edges, each scaled by ``2 / bandwidth`` in Hz so
    every band has the same area.
    """
    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(
        np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(sample_rate / 2)), n_mels + 2)
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


class LogMel(nn.Module):
    """Windows of audio -> musicnn's log-mel patches, differentiably.

    ``(n, samples)`` -> ``(n, 1 + (samples - 512) // 256, 96)``: uncentred frames of a periodic
    Hann window, power spectrum, mel, ``log10(10000 x + 1)``. (musicnn also rounded the mel power
    to float16 before the log, as its training data were stored; that moves the log by at most
    ~2e-4, and float16 overflows on loud input, e.g. a runaway dream, so it is left out.)
    """

    window: torch.Tensor
    filterbank: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        # scipy's get_window("hann", 512, fftbins=True), librosa's STFT window: periodic Hann.
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True, dtype=torch.float32))
        self.register_buffer("filterbank", torch.from_numpy(mel_filterbank().T.copy()))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        frames = audio.unfold(-1, N_FFT, STFT_HOP) * self.window  # (n, frames, 512)
        spectrum = torch.fft.rfft(frames, dim=-1)
        power = spectrum.real.square() + spectrum.imag.square()  # (n, frames, 257)
        return torch.log10(10000.0 * (power @ self.filterbank) + 1.0)


# --- the network -----------------------------------------------------------------------------


class FrozenBatchNorm(nn.Module):
    """TensorFlow batch norm in inference mode over dimension ``dim``: moving statistics, eps 1e-3."""

    gamma: torch.Tensor
    beta: torch.Tensor
    moving_mean: torch.Tensor
    moving_variance: torch.Tensor

    def __init__(self, channels: int, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim
        for name, value in (
            ("gamma", 1.0),
            ("beta", 0.0),
            ("moving_mean", 0.0),
            ("moving_variance", 1.0),
        ):
            self.register_buffer(name, torch.full((channels,), value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.gamma * torch.rsqrt(self.moving_variance + BN_EPS)
        shift = self.beta - self.moving_mean * scale
        shape = [1] * x.dim()
        shape[self.dim] = -1
        return x * scale.view(shape) + shift.view(shape)


class BandMaxBlock(nn.Module):
    """One front-end branch: a conv over the log-mel, ReLU, batch norm, max over bands.

    ``(n, 1, t', bands)`` -> ``(features, firing)``, each ``(n, filters, t)``: ``features`` is
    ``max over bands of bn(relu(conv(pad(x))))``, what musicnn passes on; ``firing`` is
    ``max over bands of relu(conv(pad(x)))``, how strongly each filter responds. ``pad`` is
    ``(before, after)`` in time.
    """

    def __init__(self, filters: int, kernel: tuple[int, int], pad: tuple[int, int]) -> None:
        super().__init__()
        self.pad = pad
        self.conv = nn.Conv2d(1, filters, kernel)
        self.bn = FrozenBatchNorm(filters)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(F.pad(x, (0, 0, *self.pad)))  # (n, filters, t, bands)
        return self.pooled(y.amin(dim=3), y.amax(dim=3))

    def pooled(self, low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The conv's minimum and maximum over bands, each ``(n, filters, t)`` -> ``(features, firing)``.

        ReLU and batch norm act per channel and are monotonic, so the max over bands can be taken
        first: max(bn(relu(y))) = bn(relu(max y)) where the bn scale is positive, and
        bn(relu(min y)) where it is negative (about half the channels). (``amin`` and ``amax``
        apart run several times faster here than ``torch.aminmax``.)
        """
        scale = self.bn.gamma * torch.rsqrt(self.bn.moving_variance + BN_EPS)
        features = self.bn(F.relu(torch.where(scale.view(1, -1, 1) < 0, low, high)))
        return features, F.relu(high)

    def unpadded(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inference on one patch already padded: ``x (t + kt - 1, bands)`` -> ``(features,
        firing)``, each ``(1, filters, t)``; the conv as one GEMM on (time x band) patches,
        which leaves bands beside filters so pooling over them is a cheap strided max."""
        kt, kf = self.conv.kernel_size
        patches = x.unfold(0, kt, 1).unfold(1, kf, 1)  # (t, f, kt, kf)
        t, f = patches.shape[:2]
        weight = self.conv.weight.reshape(self.conv.out_channels, kt * kf)
        assert self.conv.bias is not None
        y = torch.addmm(self.conv.bias, patches.reshape(t * f, kt * kf), weight.T).view(t, f, -1)
        return self.pooled(y.amin(dim=1).T[None], y.amax(dim=1).T[None])


class Frontend(nn.Module):
    """Log-mel ``(n, 187, 96)`` -> ``(features, firing)``, each ``(n, 561, 187)``: 408 timbral
    channels, then 153 temporal ones (see :class:`BandMaxBlock`)."""

    def __init__(self) -> None:
        super().__init__()
        self.bn_input = FrozenBatchNorm(1)
        # int(1.6 * 128) filters spanning 7 frames x int(0.4 * 96) or int(0.7 * 96) bands; musicnn
        # pads time only (3 + 3 frames), since frequency is pooled away after.
        self.timbral = nn.ModuleList([BandMaxBlock(204, (7, bands), (3, 3)) for bands in (38, 67)])
        # int(1.6 * 32) filters spanning 128, 64, 32 frames of one band, TensorFlow "same"
        # padding, which puts the odd extra frame after, not before.
        self.temporal = nn.ModuleList(
            [BandMaxBlock(51, (k, 1), ((k - 1) // 2, k // 2)) for k in (128, 64, 32)]
        )

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.bn_input(mel.unsqueeze(1))  # (n, 1, time, bands)
        outputs = [block(x) for block in [*self.timbral, *self.temporal]]
        return torch.cat([f for f, _ in outputs], 1), torch.cat([r for _, r in outputs], 1)


class Midend(nn.Module):
    """Front-end features ``(n, 561, t)`` -> ``(features, firing)``, each three ``(n, 64, t)``.

    ``features`` are musicnn's ``cnn1..3`` (batch-normed; the last two add a residual), which the
    back end reads; ``firing`` are the three convs' ReLU outputs.
    """

    def __init__(self, channels: int = 561, filters: int = 64) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            [nn.Conv1d(channels, filters, 7, padding=3)]
            + [nn.Conv1d(filters, filters, 7, padding=3) for _ in range(2)]
        )
        self.bns = nn.ModuleList([FrozenBatchNorm(filters) for _ in range(3)])

    def forward(self, front: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        features: list[torch.Tensor] = []
        firing: list[torch.Tensor] = []
        x = front
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            firing.append(F.relu(conv(x)))
            x = bn(firing[-1]) + (x if i else 0)  # the first conv changes the width: no residual
            features.append(x)
        return features, firing


class Backend(nn.Module):
    """Dense features ``(n, 753, t)`` -> pooled ``(n, 1506)``, penultimate ReLU ``(n, 200)``, logits ``(n, 50)``."""

    def __init__(self, channels: int = 753, units: int = 200, classes: int = 50) -> None:
        super().__init__()
        self.bn_pool = FrozenBatchNorm(2 * channels)
        self.dense = nn.Linear(2 * channels, units)
        self.bn_dense = FrozenBatchNorm(units)
        self.out = nn.Linear(units, classes)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # TensorFlow flattens concat([max, mean], axis=2) of shape (channels, 2): max_0, mean_0, max_1, ...
        pool = torch.stack([features.amax(dim=2), features.mean(dim=2)], dim=2).flatten(1)
        penultimate = F.relu(self.dense(self.bn_pool(pool)))
        return pool, penultimate, self.out(self.bn_dense(penultimate))


class MusiCNN(nn.Module):
    """Log-mel patches ``(n, t, 96)`` -> musicnn's layers, at full time resolution.

    Conv and dense layers are given as their ReLU outputs, the neurons' firing, not as the
    batch-normed copies the next layer reads: batch norm here is a per-channel affine map whose
    scale is negative for about half the channels, so after it "high" can mean "silent".
    Returns ``timbral (n, 408, t)``, ``temporal (n, 153, t)``, ``cnn1..3 (n, 64, t)``, ``pool (n,
    1506)`` (the back end's input: max and mean over time of the dense features, interleaved),
    ``penultimate (n, 200)`` and ``logits (n, 50)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.frontend = Frontend()
        self.midend = Midend()
        self.backend = Backend()

    def forward(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.after_frontend(*self.frontend(mel))

    def after_frontend(self, front: torch.Tensor, front_firing: torch.Tensor) -> dict[str, torch.Tensor]:
        """The mid and back end on the front end's ``(features, firing)``; see :meth:`forward`."""
        mid, mid_firing = self.midend(front)
        pool, penultimate, logits = self.backend(torch.cat([front, *mid], 1))
        return {
            "timbral": front_firing[:, :408],
            "temporal": front_firing[:, 408:],
            "cnn1": mid_firing[0],
            "cnn2": mid_firing[1],
            "cnn3": mid_firing[2],
            "pool": pool,
            "penultimate": penultimate,
            "logits": logits,
        }


# --- weights -----------------------------------------------------------------------------------


def load_network(path: Path | None = None) -> MusiCNN:
    """MusiCNN in eval mode with the converted MTT weights (loaded with safetensors: no pickle)."""
    from safetensors.torch import load_file

    net = MusiCNN()
    with reading(path or converted_weights(), "musicnn", "delete it: it is converted again from the musicnn package") as found:
        net.load_state_dict(load_file(found), strict=True)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)  # the ear is fixed; sonification differentiates w.r.t. the audio
    return net


# --- the ear -----------------------------------------------------------------------------------


class MusicnnEar(WindowedEar):
    """musicnn MTT as an ear: 50 tags every 0.512 s from the last 3.008 s of 16 kHz audio."""

    name = "musicnn"
    description = "musicnn (MagnaTagATune): 50 tags (genres, instruments, moods) from 3 s of audio"
    sample_rate = SAMPLE_RATE
    window = WINDOW
    hop = HOP
    latency = WINDOW // 2
    """A tag weighs the whole window evenly; its middle is the honest single number."""
    batches_twins = False  # infer reuses the front end between one stream's windows
    batch = 1
    """One window per forward. Each window is ~1.3 GMAC, plenty to keep the cores busy: on one
    thread a batch of 1 ran ~20 % faster than 8; on two threads of a badly overloaded machine 8 did
    better, both ruled by contention. One at a time makes offline analysis the very arithmetic of
    streaming, so the two agree bit for bit (batched, the mid-end convolutions round differently,
    ~1e-6 relative), and keeps activations at ~15 MB."""
    layers = (
        Layer("timbral", (408,), "channel", "conv"),
        Layer("temporal", (153,), "channel", "conv"),
        Layer("cnn1", (64,), "channel", "dense"),
        Layer("cnn2", (64,), "channel", "dense"),
        Layer("cnn3", (64,), "channel", "dense"),
        Layer("pool", (1506,), "feature", "dense"),
        Layer("penultimate", (200,), "unit", "dense"),
        Layer("tags", (50,), "tag", "dense"),
    )
    labels = MTT_LABELS
    output_layer = "tags"
    front_end = "spectrum"  # sonification hook (see Ear): the log-mel front end

    def __init__(self, network: MusiCNN | None = None) -> None:
        super().__init__()
        self.mel = LogMel()
        self.network = network or load_network()
        self._last: tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]] | None = None

    def reset(self) -> None:
        super().reset()
        self._last = None

    def frames(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(n, 48128)`` -> layer -> ``(n, *shape)``: conv layers' firing as its maximum over the
        window's 187 frames; ``pool``, ``penultimate`` and ``tags`` as they are."""
        return self._summarise(self.network(self.mel(windows)))

    @staticmethod
    def _summarise(out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        frames = {
            name: out[name].amax(dim=2) for name in ("timbral", "temporal", "cnn1", "cnn2", "cnn3")
        }
        frames["pool"] = out["pool"]
        frames["penultimate"] = out["penultimate"]
        frames["tags"] = torch.sigmoid(out["logits"])
        return frames

    def analyse(self, audio: np.ndarray) -> Frames:
        self._last = None  # from a reset state: the same arithmetic as a stream from reset
        return super().analyse(audio)

    def infer(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """:meth:`frames` for streaming and analysis, reusing the timbral front end between windows.

        The timbral convs (four fifths of the arithmetic) see 7 mel frames each, so a frame's
        output depends on the window only within 3 frames of its edges (zero padding there).
        Consecutive windows share 155 of their 187 frames: when this window's samples continue
        the last one's, its interior frames come from the last window and only the 32 new frames
        and the 6 edge frames are computed.
        """
        parts = [self._infer_one(windows[i]) for i in range(windows.shape[0])]
        return {name: torch.cat([p[name] for p in parts]) for name in parts[0]} if parts else self.frames(windows)

    def _infer_one(self, window: torch.Tensor) -> dict[str, torch.Tensor]:
        net = self.network
        x = net.frontend.bn_input(self.mel(window[None]).unsqueeze(1))  # (1, 1, frames, bands)
        last = self._last
        follows = last is not None and torch.equal(window[: WINDOW - HOP], last[0][HOP:])
        frames, hop = x.shape[2], HOP // STFT_HOP
        rows = x[0, 0]
        timbral: list[tuple[torch.Tensor, torch.Tensor]] = []
        for j, block in enumerate(cast(list[BandMaxBlock], list(net.frontend.timbral))):
            before, after = block.pad
            edges = block.unpadded(torch.cat([rows.new_zeros(before, rows.shape[1]), rows[: before + after]]))
            right = block.unpadded(torch.cat([rows[frames - before - after :], rows.new_zeros(after, rows.shape[1])]))
            if follows:
                assert last is not None
                new = block.unpadded(rows[frames - after - hop - before :])
                kept = [k[:, :, before + hop : frames - after] for k in last[1][j]]
                inner = [torch.cat([k, n], 2) for k, n in zip(kept, new, strict=True)]
            else:
                inner = list(block.unpadded(rows))
            timbral.append(
                (torch.cat([edges[0], inner[0], right[0]], 2), torch.cat([edges[1], inner[1], right[1]], 2))
            )
        self._last = (window.clone(), timbral)
        temporal = [block(x) for block in net.frontend.temporal]
        branches = [*timbral, *temporal]
        front = torch.cat([f for f, _ in branches], 1)
        firing = torch.cat([r for _, r in branches], 1)
        return self._summarise(net.after_frontend(front, firing))


def load() -> MusicnnEar:
    """The registry's entry point: the musicnn MTT ear, weights converted and cached on first use."""
    return MusicnnEar()
