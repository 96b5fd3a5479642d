"""The CPC ear's inference, in numpy: the layers of :class:`~earsight.ears.cpc.CPCNet` a hop at a time.

A hop of CPC is little arithmetic (about 0.6 MFLOP) spread over some fifty small operations; in
torch each costs a few microseconds of dispatch, which made streaming cost 20 times offline
analysis. numpy dispatches in well under a microsecond, and the weights are laid out once for
the products a hop needs (transposed, convolutions as GEMMs on channels-last patches), so a hop
costs a fraction of that. Gradients (training, dreams) still go through the torch network;
``tests/test_ear_contract.py`` holds the two to float rounding.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.special import expit

if TYPE_CHECKING:
    from .cpc import CausalConv2d, CPCNet

State = list[np.ndarray]
"""Per layer: the log-mel's last samples, each conv's last input frames ``(t, freq, channels)``,
the GRU's hidden vector."""


def _view(base: np.ndarray, shape: tuple[int, ...], strides: tuple[int, ...]) -> np.ndarray:
    """A strided read-only view of contiguous ``base`` (``as_strided`` without its ten microseconds
    of Python: a hop makes four of these)."""
    assert base.flags.c_contiguous
    view = np.ndarray(shape, base.dtype, buffer=base, strides=strides)
    view.flags.writeable = False
    return view


def _standardise(rows: np.ndarray, eps: float) -> np.ndarray:
    """Each row at zero mean and unit (population) variance, as torch's group and layer norms do
    before their affine part. (``np.add.reduce`` skips ``mean``'s microseconds of Python.)"""
    scale = np.float32(1 / rows.shape[1])
    centred = rows - np.add.reduce(rows, axis=1, keepdims=True) * scale
    var = np.add.reduce(np.square(centred), axis=1, keepdims=True) * scale
    return centred / np.sqrt(var + np.float32(eps))


def _f32(t: object) -> np.ndarray:
    assert isinstance(t, torch.Tensor)
    return np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)


class _Conv:
    """One :class:`~earsight.ears.cpc.CausalConv2d` on channels-last ``(time, freq, channels)``."""

    def __init__(self, module: CausalConv2d) -> None:
        self.kt, self.kf, self.st, self.sf = module.kt, module.kf, module.st, module.sf
        weight = _f32(module.conv.weight)  # (out, in, kt, kf)
        self.c_out, self.c_in = weight.shape[:2]
        self.weight = np.ascontiguousarray(weight.transpose(2, 3, 1, 0).reshape(-1, self.c_out))  # (kt kf in, out)
        self.bias = _f32(module.conv.bias)
        self.gamma, self.beta, self.eps = _f32(module.norm.weight), _f32(module.norm.bias), float(module.norm.eps)

    def initial(self, n_freq: int) -> np.ndarray:
        return np.zeros((self.kt - self.st, n_freq, self.c_in), np.float32)

    def step(self, x: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        buf = np.concatenate([state, x])
        t, n_freq, _ = buf.shape
        n = (t - self.kt) // self.st + 1 if t >= self.kt else 0
        pad = self.kf // 2
        f_out = (n_freq + 2 * pad - self.kf) // self.sf + 1
        if n == 0:
            return np.zeros((0, f_out, self.c_out), np.float32), buf
        used = (n - 1) * self.st + self.kt
        padded = np.zeros((used, n_freq + 2 * pad, self.c_in), np.float32)
        padded[:, pad : pad + n_freq] = buf[:used]
        s_t, s_f, s_c = padded.strides
        patches = _view(
            padded, (n, f_out, self.kt, self.kf, self.c_in), (self.st * s_t, self.sf * s_f, s_t, s_f, s_c)
        ).reshape(n * f_out, -1)
        y = (patches @ self.weight + self.bias).reshape(n, -1)  # (n, f_out * out)
        # group norm with one group: each frame over its channels and frequencies
        y = _standardise(y, self.eps).reshape(n, f_out, -1) * self.gamma + self.beta
        return np.maximum(y, np.float32(0.0)), buf[n * self.st :]


class NumpyCPC:
    """:class:`~earsight.ears.cpc.CPCNet`'s ``step`` for inference: unbatched numpy in and out."""

    def __init__(self, net: CPCNet) -> None:
        fe = net.frontend
        self.n_fft, self.hop = fe.n_fft, fe.hop
        self.window, self.filterbank = _f32(fe.window), _f32(fe.filterbank)
        self.mean, self.std = _f32(fe.mean), _f32(fe.std)
        self.convs = [_Conv(conv) for conv in net.convs]
        self.n_freq = [net.cfg.n_mels, *net.freq_sizes[:-1]]
        self.to_z, self.z_bias = np.ascontiguousarray(_f32(net.to_z.weight).T), _f32(net.to_z.bias)
        self.z_gamma, self.z_beta, self.z_eps = _f32(net.z_norm.weight), _f32(net.z_norm.bias), float(net.z_norm.eps)
        gru = net.gru
        self.w_ih, self.b_ih = np.ascontiguousarray(_f32(gru.weight_ih_l0).T), _f32(gru.bias_ih_l0)
        self.w_hh, self.b_hh = np.ascontiguousarray(_f32(gru.weight_hh_l0).T), _f32(gru.bias_hh_l0)
        self.ar_dim = gru.hidden_size
        self.names = net.layer_names

    def initial_state(self) -> State:
        return [
            np.zeros(self.n_fft - self.hop, np.float32),
            *(conv.initial(f) for conv, f in zip(self.convs, self.n_freq, strict=True)),
            np.zeros(self.ar_dim, np.float32),
        ]

    def step(self, audio: np.ndarray, state: State) -> tuple[dict[str, np.ndarray], State]:
        """``audio (samples,)`` -> layer -> ``(frames, *shape)`` float32, and the new state."""
        buf = np.concatenate([state[0], audio.astype(np.float32, copy=False)])
        n = (buf.shape[0] - self.n_fft) // self.hop + 1 if buf.shape[0] >= self.n_fft else 0
        frames = _view(buf, (n, self.n_fft), (self.hop * buf.strides[0], buf.strides[0]))
        spectrum = np.fft.rfft(frames * self.window, axis=-1)
        power = (np.square(spectrum.real) + np.square(spectrum.imag)).astype(np.float32, copy=False)
        h = ((np.log(power @ self.filterbank + np.float32(1e-6)) - self.mean) / self.std)[:, :, None]
        new: State = [buf[n * self.hop :]]
        out: dict[str, np.ndarray] = {}
        for i, conv in enumerate(self.convs):
            h, s = conv.step(h, state[1 + i])
            new.append(s)
            out[f"conv{i + 1}"] = np.ascontiguousarray(h.transpose(0, 2, 1))  # (t, channels, freq)
        t = h.shape[0]
        z = _standardise(out[f"conv{len(self.convs)}"].reshape(t, -1) @ self.to_z + self.z_bias, self.z_eps)
        out["z"] = z = np.maximum(z * self.z_gamma + self.z_beta, np.float32(0.0))
        ar = np.empty((t, self.ar_dim), np.float32)
        hidden = state[-1]
        gates_in = z @ self.w_ih + self.b_ih  # every frame's input side at once
        d = self.ar_dim
        for k in range(t):
            gates_h = hidden @ self.w_hh + self.b_hh
            reset_update = expit(gates_in[k, : 2 * d] + gates_h[: 2 * d])  # torch's order: r, z, n
            candidate = np.tanh(gates_in[k, 2 * d :] + reset_update[:d] * gates_h[2 * d :])
            hidden = ar[k] = candidate + reset_update[d:] * (hidden - candidate)
        out["ar"] = ar
        new.append(hidden)
        return {name: out[name].astype(np.float32, copy=False) for name in self.names}, new
