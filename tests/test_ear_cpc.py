"""The CPC ear: its weights file, its layers, its log-mel, and the shipped weights hear.

Streaming, causality, latency, reset and the differentiable pass: tests/test_ear_contract.py.
"""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from earsight.ears import cpc
from earsight.ears.base import Layer
from earsight.paths import models_dir

pytestmark = pytest.mark.usefixtures("torch_threads")  # each test on 1 and on 2 torch threads

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
    assert ear.layer("conv1").shape == (16, 43)  # 85 semitone bands, stride 2
    frames = ear.analyse(music(1.0))
    for layer in ear.layers:
        assert frames[layer.name].shape == (1.0 * 16000 // 320, *layer.shape)
        assert frames[layer.name].dtype == np.float32


def test_logmel_peaks_at_the_tone() -> None:
    cfg = LOGMEL
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


SEMITONES = cpc.CPCConfig(scale="log", n_fft=2048, n_mels=85, f_min=55.0, f_max=7040.0, horizons=(12, 20, 35, 50))
"""The constant-Q-like front end: a band per semitone from A1 to A8 (the default)."""
LOGMEL = cpc.CPCConfig(**{**cpc.LOGMEL, "horizons": (10, 20, 35, 50)})  # type: ignore[arg-type]
"""The first ears' 80 mel bands, which old weights still load with."""


def test_log_bands_put_every_semitone_in_its_own_band() -> None:
    cfg = SEMITONES
    fe = cpc.CausalLogMel(cfg)
    t = np.arange(cfg.n_fft * 2) / cfg.sample_rate
    for midi in range(45, 103):  # A2 (110 Hz) to G7
        hz = 440 * 2 ** ((midi - 69) / 12)
        bands, _ = fe.step(torch.from_numpy(np.sin(2 * np.pi * hz * t).astype(np.float32))[None], fe.initial_state(1))
        assert int(bands[0, -1].argmax()) == midi - 33, (midi, hz)  # band 0 is A1 (MIDI 33)
    with pytest.raises(ValueError, match="scale"):
        cpc.CausalLogMel(cpc.CPCConfig(scale="bark"))


def test_click_train_and_silence_sound_different(ear: cpc.CPCEar) -> None:
    sr = ear.sample_rate
    clicks = np.zeros(2 * sr, np.float32)
    clicks[:: sr // 8] = 0.8  # 8 clicks per second
    silence = np.zeros(2 * sr, np.float32)
    fc, fs = ear.analyse(clicks), ear.analyse(silence)
    for name in ("conv1", "z", "ar"):
        # After the first second: the GRU's state takes that long to settle from its zero start.
        a, s = fc[name][50:], fs[name][50:]
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


@pytest.mark.parametrize("cfg", [LOGMEL, SEMITONES], ids=["mel", "semitones"])
def test_receptive_field_is_exactly_the_input_z_sees(cfg: cpc.CPCConfig) -> None:
    """z[t] moves with the first weighted sample of its window and not with the one before it."""
    torch.manual_seed(0)
    net = cpc.CPCNet(cfg).eval()
    cfg = net.cfg
    t = 20
    first = (t + 1) * cfg.hop - cfg.receptive_field  # the window's first sample (Hann weight 0)
    x = torch.from_numpy(music(1.0)).reshape(1, -1)

    def z_after(sample: int, by: float = 0.5) -> torch.Tensor:
        y = x.clone()
        y[0, sample] += by
        with torch.no_grad():
            return net(y)["z"][0, t]

    with torch.no_grad():
        z = net(x)["z"][0, t]
    assert torch.equal(z_after(first), z)  # the Hann window's zero
    assert torch.equal(z_after(first - 1), z)
    # The window's first weighted sample (weight sin²(π / n_fft): 2e-6 for 2048) is heard when loud.
    assert (z_after(first + 1, 1e4) - z).abs().max() > 1e-4
    assert (z_after((t + 1) * cfg.hop - 1) - z).abs().max() > 1e-6  # the last sample before the frame's end
    assert torch.equal(z_after((t + 1) * cfg.hop), z)  # causal


def test_default_horizons_share_no_input_with_the_context() -> None:
    assert cpc.CPCConfig() == SEMITONES
    cfg = LOGMEL
    assert cfg.receptive_field == 2784 and cfg.min_horizon == 9
    assert [cfg.overlap(k) for k in cfg.horizons] == [0] * len(cfg.horizons)
    # The 0.1 s horizon of the first ear shared 74 ms of input with its context.
    assert cfg.overlap(5) == 1184 and cfg.overlap(9) == 0
    # A 2048-sample window reaches 64 ms further back: its nearest honest horizon is 12 frames.
    cfg = cpc.CPCConfig()
    assert cfg.receptive_field == 3808 and cfg.min_horizon == 12
    assert [cfg.overlap(k) for k in cfg.horizons] == [0] * 4 and cfg.overlap(11) > 0


def test_weights_from_before_the_semitone_front_end_keep_their_mel_bands() -> None:
    old = json.loads(LOGMEL.to_json())
    del old["scale"]  # their JSON had no such field
    assert cpc.CPCConfig.from_json(json.dumps(old)) == LOGMEL
