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

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import NotFound
from ..paths import cache_dir
from .base import Layer, WindowedEar
from .tfcheckpoint import read_checkpoint
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
CONVERSION = 2
"""Bump when the cached torch layout changes, so old caches are not reused."""

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
        # ReLU and batch norm act per channel and are monotonic, so the max over bands can be
        # taken first: max(bn(relu(y))) = bn(relu(max y)) where the bn scale is positive, and
        # bn(relu(min y)) where it is negative (about half the channels). One pass for min and
        # max over the big map instead of four full-size ops halves the front end's cost.
        low, high = torch.aminmax(y, dim=3)
        scale = self.bn.gamma * torch.rsqrt(self.bn.moving_variance + BN_EPS)
        features = self.bn(F.relu(torch.where(scale.view(1, -1, 1) < 0, low, high)))
        return features, F.relu(high)


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
        front, front_firing = self.frontend(mel)
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


def _tf_to_torch(tf: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map the checkpoint's variables (``tf.layers`` names, in creation order) onto MusiCNN's buffers.

    Kernels: conv2d ``(kh, kw, in, out)`` -> ``(out, in, kh, kw)``; the mid-end convs span all
    channels in TensorFlow's width axis, so ``(7, channels, 1, out)`` -> conv1d ``(out, channels, 7)``;
    dense ``(in, out)`` -> ``(out, in)``.
    """

    def bn(prefix: str, index: int) -> dict[str, np.ndarray]:
        scope = "batch_normalization" + (f"_{index}" if index else "")
        return {
            f"{prefix}.{k}": tf[f"{scope}/{k}"]
            for k in ("gamma", "beta", "moving_mean", "moving_variance")
        }

    def conv(i: int) -> str:
        return "conv2d" + (f"_{i}" if i else "")

    out: dict[str, np.ndarray] = {}
    out |= bn("frontend.bn_input", 0)
    for j in range(2):  # conv2d, conv2d_1 with batch_normalization_1, _2
        out[f"frontend.timbral.{j}.conv.weight"] = tf[f"{conv(j)}/kernel"].transpose(3, 2, 0, 1)
        out[f"frontend.timbral.{j}.conv.bias"] = tf[f"{conv(j)}/bias"]
        out |= bn(f"frontend.timbral.{j}.bn", 1 + j)
    for j in range(3):  # conv2d_2.._4 with batch_normalization_3.._5
        out[f"frontend.temporal.{j}.conv.weight"] = tf[f"{conv(2 + j)}/kernel"].transpose(
            3, 2, 0, 1
        )
        out[f"frontend.temporal.{j}.conv.bias"] = tf[f"{conv(2 + j)}/bias"]
        out |= bn(f"frontend.temporal.{j}.bn", 3 + j)
    for j in range(3):  # conv2d_5.._7 with batch_normalization_6.._8
        out[f"midend.convs.{j}.weight"] = tf[f"{conv(5 + j)}/kernel"][:, :, 0, :].transpose(2, 1, 0)
        out[f"midend.convs.{j}.bias"] = tf[f"{conv(5 + j)}/bias"]
        out |= bn(f"midend.bns.{j}", 6 + j)
    out |= bn("backend.bn_pool", 9)
    out["backend.dense.weight"] = tf["dense/kernel"].T
    out["backend.dense.bias"] = tf["dense/bias"]
    out |= bn("backend.bn_dense", 10)
    out["backend.out.weight"] = tf["dense_1/kernel"].T
    out["backend.out.bias"] = tf["dense_1/bias"]
    return {k: torch.from_numpy(np.ascontiguousarray(v, np.float32)) for k, v in out.items()}


def checkpoint_prefix(model: str = "MTT_musicnn") -> Path:
    """Where the ``musicnn`` wheel keeps a model's TensorFlow checkpoint (its prefix ends in ``/``)."""
    import importlib.util

    spec = importlib.util.find_spec("musicnn")  # locate without importing (it imports TensorFlow)
    if spec is None or not spec.submodule_search_locations:
        raise NotFound("the musicnn ear needs the `musicnn` wheel (pip install --no-deps musicnn)")
    prefix = Path(next(iter(spec.submodule_search_locations))) / model
    if not (prefix / ".index").exists():
        raise NotFound(f"no checkpoint at {prefix}/.index")
    return prefix


def converted_weights(prefix: Path | None = None) -> Path:
    """The safetensors file with torch-layout weights, converting the checkpoint on first use.

    The file name carries a digest of the checkpoint's index (which holds every tensor's CRC), so a
    changed checkpoint is converted again.
    """
    from safetensors.torch import save_file

    prefix = prefix or checkpoint_prefix()
    digest = hashlib.sha256((prefix / ".index").read_bytes()).hexdigest()[:12]
    path = cache_dir() / f"musicnn-mtt-v{CONVERSION}-{digest}.safetensors"
    if not path.exists():
        with reading(prefix / ".index", "musicnn's checkpoint", "pip install --force-reinstall --no-deps musicnn"):
            tensors = _tf_to_torch(read_checkpoint(prefix, verify=True))
        # Write beside the target, then rename: a concurrent loader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata={"source": str(prefix), "format": "earsight musicnn"})
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


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

    def frames(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(n, 48128)`` -> layer -> ``(n, *shape)``: conv layers' firing as its maximum over the
        window's 187 frames; ``pool``, ``penultimate`` and ``tags`` as they are."""
        out = self.network(self.mel(windows))
        frames = {
            name: out[name].amax(dim=2) for name in ("timbral", "temporal", "cnn1", "cnn2", "cnn3")
        }
        frames["pool"] = out["pool"]
        frames["penultimate"] = out["penultimate"]
        frames["tags"] = torch.sigmoid(out["logits"])
        return frames


def load() -> MusicnnEar:
    """The registry's entry point: the musicnn MTT ear, weights converted and cached on first use."""
    return MusicnnEar()
