"""auralise (Choi et al., ISMIR 2015): the deconvnet runs one feature map back to the input through
the network's own backward pass with one change, a ReLU whose backward is ``relu(grad)``
(:class:`DeconvMode`); max-pooling's backward already routes through the forward pass's switches
and a convolution's backward is the transposed convolution. The seed is the feature map above its
resting level (the ear's own, :meth:`Ear.resting <earsight.ears.base.Ear.resting>`, else its
minimum over the signal: a feature that never fires seeds nothing). What we take as the
time-frequency picture (:func:`auralise`):

- an ear that looks at the waveform (``front_end`` "wave": CREPE): each window's reconstructed
  *signal*; the mask is its STFT magnitude (Hann, ``n_fft`` = 1024 = CREPE's window, one STFT
  frame per ear frame);
- an ear with an FFT front end (``front_end`` "spectrum": musicnn, CPC): the backward pass
  crosses the log unchanged (the log belongs to the front end that makes the network's input,
  not to the network), so the reconstruction's spectrum is ``|X| * mask`` and the mask is that
  divided by ``|X|``.

The mask is scaled to [0, 1] and applied to the input's STFT; the output keeps the input's phase
(weighted overlap-add).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ..ears.base import Ear, WindowedEar
from .dsp import resynthesise, stft_frames, stft_hop
from .target import Target, check_target, layer_frames


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


def _network_input(ear: Ear, windows: torch.Tensor, layer: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The network's input as a leaf, the layer computed from it, and the gain back to raw audio:
    the ear's own (:meth:`Ear.network_input <earsight.ears.base.Ear.network_input>`), else the raw
    windows ``(n, window)`` with gain ``(n, 1)`` ones."""
    own = ear.network_input(windows, layer)
    if own is not None:
        return own
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
    spectral = ear.front_end == "spectrum"  # the reconstruction is |X| * mask: divide by |X|
    rest = ear.resting(layer)
    if rest is not None and floor is None:
        floor = rest[0]
    if isinstance(ear, WindowedEar):
        fft = min(n_fft, ear.window)
        # Strided frames must still overlap on the STFT grid (hop <= n_fft / 2) for overlap-add.
        stride = max(1, min(stride, (fft // 2) // ear.hop)) if ear.hop <= fft // 2 else 1
        hop = ear.hop * stride
        sh = stft_hop(hop, fft)
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
            with DeconvMode():
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
                m = np.abs(stft_frames(r[j], fft, sh))
                if spectral:
                    m /= np.abs(stft_frames(xp[s : s + ear.window], fft, sh)) + 1e-3 * (np.abs(r[j]).max() + 1e-12)
                g0 = s // sh
                mask[g0 : g0 + local] = np.maximum(mask[g0 : g0 + local], m[: total - g0])
        hop_out = sh
    else:
        fft, sh = n_fft, stft_hop(ear.hop, n_fft)
        pad = fft - sh
        xp = np.concatenate([np.zeros(pad, np.float32), x])
        xt = torch.from_numpy(x).reshape(1, -1).requires_grad_(True)
        with DeconvMode():
            acts = ear.forward(xt)[layer]  # (1, frames, channels, *rest)
            chan = acts[0, :, channel].detach()
            if floor is None:
                floor = acts[0].detach().transpose(0, 1).reshape(acts.shape[2], -1).min(dim=1).values.numpy()
            seed = torch.zeros_like(acts)
            seed[0, :, channel] = (chan - float(np.asarray(floor)[channel])).clamp_min(0.0)
        (recon,) = torch.autograd.grad(acts, xt, seed)
        r = np.concatenate([np.zeros(pad, np.float32), recon.reshape(-1).numpy()])
        mask = np.abs(stft_frames(r, fft, sh)).astype(np.float32)
        if spectral:
            mask /= np.abs(stft_frames(xp, fft, sh)) + 1e-3 * (np.abs(r).max() + 1e-12)
        hop_out = sh
    peak = float(mask.max(initial=0.0))
    denominator = scale if scale is not None else peak
    mask = np.clip(mask / denominator, 0.0, 1.0) if denominator > 0 else np.zeros_like(mask)
    y = apply_mask(x, mask.T, fft, hop_out, pad)
    return Auralisation(y, mask.T.copy(), ear.sample_rate, fft, hop_out, pad, peak, np.asarray(floor, np.float32))


def apply_mask(audio: np.ndarray, mask: np.ndarray, n_fft: int, hop: int, pad: int) -> np.ndarray:
    """``audio (samples,)`` through ``mask (bins, frames)`` on the STFT grid with ``pad`` zeros before; input phase kept."""
    xp = np.concatenate([np.zeros(pad, np.float32), np.asarray(audio, np.float32).reshape(-1)])
    spec = stft_frames(xp, n_fft, hop)
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


def auralise_with(ear: Ear, audio: np.ndarray, target: Target, values: dict[str, Any], **kw: Any) -> Auralisation:
    channel = target.channels[0] if target.channels else 0
    return auralise(ear, audio, target.layer, channel, stride=int(values["stride"]), **kw)
