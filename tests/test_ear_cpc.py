"""The CPC ear: causal, streaming equals offline, differentiable, and the shipped weights hear."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from earsight.ears import cpc
from earsight.ears.base import Layer
from earsight.paths import models_dir

torch.set_num_threads(1)
WEIGHTS = models_dir() / "cpc.safetensors"


@pytest.fixture(scope="module")
def ear() -> cpc.CPCEar:
    return cpc.load()


def music(seconds: float = 3.0, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """Notes with onsets and a noise burst: something for every layer to react to."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = np.zeros_like(t)
    for start in np.arange(0, seconds, 0.25):
        f = 110 * 2 ** (rng.integers(0, 36) / 12)
        env = np.where(t >= start, np.exp(-(t - start) * 6), 0.0)
        x += 0.2 * env * np.sin(2 * np.pi * f * t)
    if seconds > 1.2:
        x[int(sr * 1.1) : int(sr * 1.2)] += 0.3 * rng.standard_normal(int(sr * 0.1))
    return x.astype(np.float32)


def streamed(ear: cpc.CPCEar, audio: np.ndarray, block: int) -> dict[str, np.ndarray]:
    ear.reset()
    parts: dict[str, list[np.ndarray]] = {layer.name: [] for layer in ear.layers}
    for start in range(0, audio.shape[0], block):
        for name, value in ear.stream(audio[start : start + block]).items():
            parts[name].append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}


def test_weights_are_safetensors_with_config_and_small() -> None:
    raw = WEIGHTS.read_bytes()
    assert len(raw) <= 20 * 2**20
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])  # plain JSON: there is no pickle to run
    config = cpc.CPCConfig.from_json(header["__metadata__"]["config"])
    assert config.hop == 320
    assert all(
        entry["dtype"] in ("F32", "F16", "BF16")
        for k, entry in header.items()
        if k != "__metadata__"
    )


def test_layers_and_rates(ear: cpc.CPCEar) -> None:
    assert ear.frame_rate == 50.0
    assert [layer.name for layer in ear.layers] == ["conv1", "conv2", "conv3", "z", "ar"]
    assert ear.layer("ar") == Layer("ar", (256,), "unit", "recurrent")
    assert ear.layer("conv1").shape == (16, 40)
    frames = ear.analyse(music(1.0))
    for layer in ear.layers:
        assert frames[layer.name].shape == (1.0 * 16000 // 320, *layer.shape)
        assert frames[layer.name].dtype == np.float32


@pytest.mark.parametrize("block", [64, 512, 4096])
def test_streaming_equals_offline(ear: cpc.CPCEar, block: int) -> None:
    audio = music(3.0)[: 3 * 16000 - 77]  # a ragged end: the last partial hop must wait, not emit
    offline = ear.analyse(audio)
    online = streamed(ear, audio, block)
    for name in offline:
        assert online[name].shape == offline[name].shape
        np.testing.assert_allclose(online[name], offline[name], atol=2e-4, rtol=1e-4, err_msg=name)


def test_small_buffers_emit_frames_exactly_when_hops_complete(ear: cpc.CPCEar) -> None:
    ear.reset()
    got = [ear.stream(np.zeros(100, np.float32))["ar"].shape[0] for _ in range(16)]
    # 100-sample blocks: frames at samples 320, 640, 960, 1280, 1600 -> after blocks 4, 7, 10, 13, 16.
    assert np.nonzero(got)[0].tolist() == [3, 6, 9, 12, 15]


def test_causal_future_does_not_change_the_past(ear: cpc.CPCEar) -> None:
    a = music(2.0)
    b = a.copy()
    b[16000:] = np.random.default_rng(1).standard_normal(16000).astype(np.float32)
    fa, fb = ear.analyse(a), ear.analyse(b)
    k = 16000 // ear.hop  # frame k is the first one that may hear sample 16000
    for name in fa:
        np.testing.assert_array_equal(fa[name][:k], fb[name][:k])
        assert not np.allclose(fa[name][k:], fb[name][k:])


def test_forward_is_differentiable_and_matches_analyse(ear: cpc.CPCEar) -> None:
    audio = music(1.0)
    x = torch.from_numpy(audio)[None].clone().requires_grad_(True)
    out = ear.forward(x)
    out["ar"][0, :, 3].mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    offline = ear.analyse(audio)
    for name, value in out.items():
        np.testing.assert_allclose(value[0].detach().numpy(), offline[name], atol=2e-4, rtol=1e-4)


def test_logmel_peaks_at_the_tone() -> None:
    cfg = cpc.CPCConfig()
    fe = cpc.CausalLogMel(cfg)
    t = np.arange(cfg.n_fft * 4) / cfg.sample_rate
    mel, _ = fe.step(
        torch.from_numpy(np.sin(2 * np.pi * 1000 * t).astype(np.float32))[None], fe.initial_state(1)
    )
    fb = cpc.mel_filterbank(
        sample_rate=cfg.sample_rate,
        n_fft=cfg.n_fft,
        n_mels=cfg.n_mels,
        f_min=cfg.f_min,
        f_max=cfg.f_max,
    )
    bin_1k = round(1000 * cfg.n_fft / cfg.sample_rate)
    assert int(mel[0, -1].argmax()) == int(fb[bin_1k].argmax())


def test_click_train_and_silence_sound_different(ear: cpc.CPCEar) -> None:
    sr = ear.sample_rate
    clicks = np.zeros(2 * sr, np.float32)
    clicks[:: sr // 8] = 0.8  # 8 clicks per second
    silence = np.zeros(2 * sr, np.float32)
    fc, fs = ear.analyse(clicks), ear.analyse(silence)
    for name in ("conv1", "z", "ar"):
        a, s = fc[name][25:], fs[name][25:]  # after the first half second
        # Different enough that a viewer sees it: mean distance well above silence's own spread.
        assert np.abs(a - s).mean() > 10 * (s.std(axis=0).mean() + 1e-3), name
    # Silence is a steady state; clicks keep the recurrent state moving.
    assert (
        np.abs(np.diff(fc["ar"][25:], axis=0)).mean()
        > 5 * np.abs(np.diff(fs["ar"][25:], axis=0)).mean()
    )


def test_load_reports_missing_weights(tmp_path) -> None:
    from earsight.errors import NotFound

    with pytest.raises(NotFound):
        cpc.load(tmp_path / "nothing.safetensors")
