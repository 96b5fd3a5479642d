"""The contract every registered ear keeps; an ear joins all of it by registering.

Each test runs once per name in ``registry.names()`` (trained ears included). Signals are a few
hops long: musicnn's frames cost a 3 s window each, so every test uses the fewest frames that
make its point.

Tolerances: the same frames computed in different batches or block splits round differently
(observed up to ~1e-6 of a layer's largest value); ``close`` allows ten times that, relative to
the layer's own scale, so a frame off by a sample or a lost state fails by orders of magnitude.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from earsight.ears import registry
from earsight.ears.base import Ear, Frames
from earsight.stage import Stage

pytestmark = pytest.mark.usefixtures("torch_threads")  # each test on 1 and on 2 torch threads

NAMES = registry.names()


@pytest.fixture(scope="module", params=NAMES)
def ear(request: pytest.FixtureRequest) -> Iterator[Ear]:
    ear = registry.load(request.param)
    yield ear
    ear.reset()


def signal(ear: Ear, n: int, seed: int = 0) -> np.ndarray:
    """A glide with a little noise, ``(n,)`` float32: every layer busy, nothing periodic in time."""
    rate = ear.sample_rate
    phase = 2 * np.pi * np.cumsum(np.linspace(200, 800, n)) / rate
    noise = np.random.default_rng(seed).standard_normal(n)
    return (0.4 * np.sin(phase) + 0.05 * noise).astype(np.float32)


def close(actual: np.ndarray, expected: np.ndarray, what: str, tolerance: float = 1e-5) -> None:
    """Equal to rounding: within ``tolerance`` of the layer's largest magnitude (at least 1)."""
    assert actual.shape == expected.shape, what
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=tolerance * scale, err_msg=what)


def streamed(ear: Ear, audio: np.ndarray, block: int) -> Frames:
    """Reset, then feed ``audio`` in ``block``-sample pieces; frames must come exactly as hops complete."""
    ear.reset()
    parts: dict[str, list[np.ndarray]] = {name: [] for name in ear.layer_names}
    fed = made = 0
    for start in range(0, audio.shape[0], block):
        piece = audio[start : start + block]
        got = ear.process(piece)
        fed += piece.shape[0]
        assert set(got) == set(ear.layer_names)
        counts = {name: value.shape[0] for name, value in got.items()}
        made += counts[ear.layer_names[0]]
        assert set(counts.values()) == {counts[ear.layer_names[0]]}, counts
        assert made == fed // ear.hop, f"{made} frames after {fed} samples, hop {ear.hop}"
        for name, value in got.items():
            parts[name].append(value)
    return {name: np.concatenate(values) for name, values in parts.items()}


def latency_layer(ear: Ear) -> str:
    return ear.latency_layer or ear.layer_names[-1]


# --- the stage contract -------------------------------------------------------------------------


def test_ear_is_a_stage_on_its_own_clock(ear: Ear) -> None:
    assert isinstance(ear, Stage)
    assert ear.rate_in == ear.rate_out == ear.sample_rate
    assert 0 < ear.hop <= ear.window
    assert 0 < ear.latency <= ear.window
    assert latency_layer(ear) in ear.layer_names


@pytest.mark.parametrize("block", [64, 512, 4096, 1001])
def test_streaming_equals_offline(ear: Ear, block: int) -> None:
    # Long enough that a 4096 block splits it and at least three frames complete.
    audio = signal(ear, 4096 + 3 * ear.hop + ear.hop // 3)
    offline = ear.analyse(audio)
    online = streamed(ear, audio, block)
    assert set(offline) == set(ear.layer_names)
    for layer in ear.layers:
        assert offline[layer.name].shape == (audio.shape[0] // ear.hop, *layer.shape)
        assert offline[layer.name].dtype == online[layer.name].dtype == np.float32
        close(online[layer.name], offline[layer.name], f"{layer.name}, blocks of {block}")


def test_stream_is_process(ear: Ear) -> None:
    audio = signal(ear, 2 * ear.hop + 7)
    ear.reset()
    first = ear.process(audio)
    ear.reset()
    second = ear.stream(audio)
    for name in ear.layer_names:
        np.testing.assert_array_equal(second[name], first[name], err_msg=name)


def test_frames_are_causal(ear: Ear) -> None:
    """Changing the input from sample ``t`` on changes no frame that ends at or before ``t``."""
    hop = ear.hop
    audio = signal(ear, 4 * hop)
    t = 2 * hop + hop // 3  # inside frame 2's last hop
    changed = audio.copy()
    changed[t:] = np.random.default_rng(1).standard_normal(audio.shape[0] - t).astype(np.float32)
    a, b = ear.analyse(audio), ear.analyse(changed)
    done = t // hop  # frames 0 .. done - 1 end at (k + 1) * hop <= t
    for name in ear.layer_names:
        np.testing.assert_array_equal(a[name][:done], b[name][:done], err_msg=name)
    # ... the first frame that may hear the change does, and every layer hears it.
    layer = latency_layer(ear)
    assert not np.allclose(a[layer][done], b[layer][done]), layer
    for name in ear.layer_names:
        assert not np.allclose(a[name][done:], b[name][done:]), name


def measured_latency(ear: Ear, *, phases: int = 4) -> float:
    """The latency an impulse shows: its effect-weighted mean delay to the frames it changes.

    Background: noise at -40 dBFS (seeded). An impulse of 0.5 is added at ``t_j = t_0 + j * hop /
    phases`` for ``j < phases``, one per run, with ``t_0`` at least a window in, so every frame
    that hears it has a window full of signal. For frame ``k`` of :attr:`Ear.latency_layer`,
    ``e[j, k]`` is the root mean square over its units of the change the impulse makes and
    ``d[j, k] = (k + 1) * hop - t_j`` is the delay from the impulse to the frame's end. The
    result is ``sum(e * d) / sum(e)``.

    Why a centroid and not the frame where the effect peaks: the effect is nearly flat across
    the window (CREPE normalises each window; musicnn pools over time), so its argmax is decided
    by rounding. Why several phases: a hop-sized grid of delays alone would bias the centroid by
    up to half a hop wherever the window is not a whole number of hops.
    """
    hop, window = ear.hop, ear.window
    t0 = -(-window // hop) * hop
    n = t0 + window + 2 * hop
    layer = latency_layer(ear)
    background = (0.01 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    base = ear.analyse(background)[layer].reshape(n // hop, -1).astype(np.float64)
    weighted = total = 0.0
    for j in range(phases):
        t = t0 + j * hop // phases
        audio = background.copy()
        audio[t] += 0.5
        frames = ear.analyse(audio)[layer].reshape(n // hop, -1).astype(np.float64)
        effect = np.sqrt(np.mean((frames - base) ** 2, axis=1))
        assert effect[: t // hop].max(initial=0.0) == 0.0  # causal: nothing before the impulse
        delay = (np.arange(n // hop) + 1) * hop - t
        weighted += float((effect * delay).sum())
        total += float(effect.sum())
    assert total > 0, f"an impulse changes nothing in {layer}"
    return weighted / total


def test_declared_latency_is_measured_with_an_impulse(ear: Ear) -> None:
    """To the frame: rounded to the hop grid, the declared latency names the frame the impulse weighs most in."""
    measured = measured_latency(ear)
    assert abs(measured - ear.latency) <= ear.hop / 2, (
        f"{ear.name} declares {ear.latency} samples, an impulse shows {measured:.0f} "
        f"(hop {ear.hop}, in {latency_layer(ear)})"
    )


def test_reset_restores_the_initial_state(ear: Ear) -> None:
    audio = signal(ear, 3 * ear.hop + 11, seed=2)
    fresh = registry.load(ear.name).process(audio)
    ear.reset()
    ear.process(signal(ear, ear.hop + ear.hop // 2, seed=3))  # frames and a half-heard hop
    ear.reset()
    again = ear.process(audio)
    for name in ear.layer_names:
        close(again[name], fresh[name], name)


def test_forward_equals_analyse_and_is_differentiable(ear: Ear) -> None:
    """The differentiable pass gives the offline frames; a frame's gradient covers exactly its window."""
    hop, window = ear.hop, ear.window
    k = -(-window // hop)  # the last frame; its window starts a hop or more into the signal
    n = (k + 1) * hop + hop // 2
    audio = np.stack([signal(ear, n, seed=4), signal(ear, n, seed=5)[::-1]])
    x = torch.from_numpy(audio.copy()).requires_grad_(True)
    out = ear.forward(x)
    assert set(out) == set(ear.layer_names)
    for row in range(2):
        offline = ear.analyse(audio[row])
        for name in ear.layer_names:
            # an ear that infers in int8 declares how far from its float forward that lands
            close(out[name][row].detach().numpy(), offline[name], f"{name}, row {row}", ear.inference_tolerance)
    layer = latency_layer(ear)
    out[layer][0, k].sum().backward()
    assert x.grad is not None
    grad = x.grad.abs().numpy()
    assert np.isfinite(grad).all()
    assert grad[1].sum() == 0  # rows are independent
    end = (k + 1) * hop  # frame k hears [end - window, end)
    assert grad[0, : end - window].sum() == 0 and grad[0, end:].sum() == 0
    # ... and it reaches the window's first and last 1 %: no smaller window would do.
    edge = window // 100
    assert grad[0, end - window : end - window + edge].sum() > 0
    assert grad[0, end - edge : end].sum() > 0
    assert all(p.grad is None for p in ear_parameters(ear))  # the weights stay frozen


def ear_parameters(ear: Ear) -> list[torch.Tensor]:
    return [
        p
        for value in vars(ear).values()
        if isinstance(value, torch.nn.Module)
        for p in value.parameters()
    ]


# --- declared outputs ---------------------------------------------------------------------------


def test_declared_outputs_are_what_frames_hold(ear: Ear) -> None:
    frames = ear.analyse(signal(ear, 2 * ear.hop))
    heard = ear.pitch(frames)
    if ear.pitch_layer is None:
        assert heard is None
    else:
        assert ear.pitch_layer in ear.layer_names and heard is not None
        hz, confidence = heard
        assert hz.shape == confidence.shape == (2,)
        assert np.isfinite(hz).all() and (hz > 0).all()
        assert ((confidence >= 0) & (confidence <= 1)).all()
    if ear.labels:
        assert ear.output_layer is not None
        assert ear.layer(ear.output_layer).size == len(ear.labels)
    info = ear.info()
    assert (info["name"], info["latency"], info["window"]) == (ear.name, ear.latency, ear.window)
