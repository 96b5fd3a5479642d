"""Dream raises the chosen neurons within a loudness bound, for every ear.

Measured figures are printed (``pytest -s``) so a run documents them. Torch runs on
EARSIGHT_TEST_THREADS threads (default 2): run with 1 and with 2, the bounds hold for both.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sonify_signals import MAX_DB, SR, middling_channels, rms, tone

from earsight.ears import registry
from earsight.ears.base import Ear, WindowedEar
from earsight.errors import BadRequest, NotFound
from earsight.sonify import dream as sd
from earsight.sonify.deconv import DeconvMode
from earsight.sonify.target import Target, activations, span

pytestmark = pytest.mark.usefixtures("torch_threads")


def test_dream_raises_activation_within_loudness_bound_crepe(crepe: Ear) -> None:
    x = tone(0.25)
    frames = crepe.analyse(x)
    gains = []
    for layer, count in (("conv2", 2), ("conv4", 1), ("conv6", 1)):
        for channel in middling_channels(frames[layer], count):
            target = Target(layer, (channel,))
            out = sd.dream(crepe, x, target, steps=8, lr=0.3, frames=None, seed=channel)
            before = float(frames[layer][:, channel].mean())
            after = float(crepe.analyse(out.audio)[layer][:, channel].mean())
            gain = after / before
            db = 20 * math.log10(rms(out.audio) / rms(x))
            print(f"crepe {layer}:{channel} activation {before:.3f} -> {after:.3f} gain x{gain:.2f}, RMS {db:+.2f} dB, peak {np.abs(out.audio).max():.2f}")
            assert np.isfinite(out.audio).all()
            assert abs(db) <= MAX_DB and np.abs(out.audio).max() <= 1.0
            assert gain > 1.5, f"{layer}:{channel} gain {gain:.2f}"
            gains.append(gain)
    assert float(np.exp(np.mean(np.log(gains)))) >= 3.0, f"geometric mean gain {np.exp(np.mean(np.log(gains))):.2f}"


def movable(ear: Ear, x: np.ndarray, target: Target) -> bool:
    audio = torch.from_numpy(x).reshape(1, -1).requires_grad_(True)
    value = sd.objective(target)(activations(ear, audio, target))
    (grad,) = torch.autograd.grad(value, audio)
    return bool(grad.abs().max() > 0)


MEL_EARS = (("musicnn", ("timbral", "cnn1", "cnn3"), 2, 6), ("cpc", ("conv1", "conv2", "conv3"), 2, 12))
"""Ear, layers, channels per layer, steps: musicnn's steps are heavy (one 3 s window each)."""


def test_dream_raises_activation_other_ears() -> None:
    """The mel-front-end ears, when installed, with the defaults' parameterisation ("auto": the
    spectrum for these ears): several layers, channels active on the input, loudness bounded.

    The loudness bound holds by construction (dream shrinks its change until the RMS is within
    3 dB), so this measures what the bound leaves of the gain. It failed on a fresh machine
    before the bound existed: musicnn cnn3:45 x6.63 at -5.70 dB, where this one measured x4.95
    at +0.02 dB -- the same ascent, rounded differently."""
    gains: list[float] = []
    for name, layers, count, steps in MEL_EARS:
        try:
            ear = registry.load(name)
        except (NotFound, ImportError, FileNotFoundError) as exc:
            print(f"{name}: not available ({exc})")
            continue
        assert sd.auto_param(ear) == "spectrum"
        x = tone(max(ear.window, SR // 2) / SR, noise=0.03)
        frames = ear.analyse(x)
        region = (0.9, 1.0)
        where = span(max(1, x.shape[0] // ear.hop), region)
        for layer in layers:
            before = frames[layer][where]
            means = before.reshape(before.shape[0], before.shape[1], -1).mean(axis=(0, 2))
            # Active units (open ReLUs somewhere: they vary) from the upper half, not dead
            # ones, and ones the input can move: a max over time whose argmax sits on a closed
            # ReLU (batch norm with a negative scale) has no gradient at all.
            alive = [int(c) for c in np.argsort(means) if np.ptp(frames[layer][:, c]) > 0 and means[c] > 0]
            upper = [c for c in alive[int(0.5 * (len(alive) - 1)) :] if movable(ear, x, Target(layer, (c,), time=region))]
            picks = list(dict.fromkeys(upper[int(q * (len(upper) - 1))] for q in np.linspace(0.0, 0.8, count)))
            for channel in picks:
                target = Target(layer, (channel,), time=region)
                out = sd.dream(ear, x, target, steps=steps, frames=None, jitter_samples=0, seed=channel)
                after = ear.analyse(out.audio)[layer][where]
                gain = float(after.reshape(after.shape[0], after.shape[1], -1)[:, channel].mean() / means[channel])
                db = 20 * math.log10(rms(out.audio) / rms(x))
                print(f"{name} {layer}:{channel} activation {means[channel]:.3f} -> x{gain:.2f}, RMS {db:+.2f} dB, peak {np.abs(out.audio).max():.2f}, {steps} steps {out.seconds:.1f} s (own x{out.gain:.2f})")
                assert np.isfinite(out.audio).all()
                assert abs(db) <= MAX_DB and np.abs(out.audio).max() <= 1.0
                # Never clearly lower; a few units do not move at all (measured x0.96-1.00 on
                # musicnn timbral:131 and cnn1:50 on this input, with 6 or 10 steps alike).
                assert gain >= 0.9, f"{name} {layer}:{channel} gain {gain:.2f}"
                gains.append(gain)
    if not gains:
        pytest.skip("no mel-front-end ear installed yet")
    mean = float(np.exp(np.mean(np.log(gains))))
    raised = sum(g >= 1.3 for g in gains)
    print(f"mel ears: geometric mean gain x{mean:.2f} over {len(gains)} units, {raised} of them x1.3 or more")
    # Measured x2.26 (musicnn x1.00-4.95, cpc x1.45-4.51; 10 of 12 units x1.3 or more).
    assert mean >= 1.8, f"geometric mean gain {mean:.2f}"
    assert raised >= 2 * len(gains) // 3, f"only {raised} of {len(gains)} units raised x1.3"


def test_dream_loudness_bound_holds_by_construction(crepe: Ear) -> None:
    """A dream pushed hard (the largest strength, a large rate) stays within a tight bound, and
    still raises its unit: the bound shrinks the change, it does not undo it."""
    x = tone(0.2)
    frames = crepe.analyse(x)
    channel = middling_channels(frames["conv2"], 1)[0]
    target = Target("conv2", (channel,))
    free = sd.dream(crepe, x, target, steps=6, lr=2.0, strength=8.0, frames=None, loudness_db=None)
    bound = sd.dream(crepe, x, target, steps=6, lr=2.0, strength=8.0, frames=None, loudness_db=1.0)
    free_db, bound_db = (20 * math.log10(rms(r.audio) / rms(x)) for r in (free, bound))
    print(f"crepe conv2:{channel} pushed: unbounded {free_db:+.2f} dB x{free.gain:.2f}, within 1 dB {bound_db:+.2f} dB x{bound.gain:.2f}")
    assert abs(bound_db) <= 1.0
    assert bound.gain > 1.0 and np.isfinite(bound.audio).all()
    assert np.allclose(bound.audio - x, bound.delta, atol=1e-6)  # the warm start is the bounded change


def test_auto_parameterisation_follows_the_front_end(crepe: Ear) -> None:
    assert sd.auto_param(crepe) == "wave"
    assert sd.resolve_param(crepe, "spectrum") == "spectrum"
    with pytest.raises(BadRequest):
        sd.resolve_param(crepe, "pixels")


@pytest.mark.parametrize("name", ["crepe", "musicnn", "cpc"])
def test_declared_front_end_is_what_the_ear_computes(name: str) -> None:
    """Each ear declares its front end; the deconvnet's mode watches for an FFT on a run."""
    try:
        ear = registry.load(name)
    except (NotFound, ImportError, FileNotFoundError) as exc:
        pytest.skip(f"{name}: not available ({exc})")
    probe = torch.zeros(1, ear.window + ear.hop)
    with torch.no_grad(), DeconvMode() as mode:
        activations(ear, probe, Target(ear.layers[0].name), frames=1)
    assert ear.front_end == ("spectrum" if mode.saw_fft else "wave")


def test_crepe_runs_only_up_to_a_conv_layer(crepe: Ear) -> None:
    windows = torch.from_numpy(tone(0.3)[: 4 * crepe.window].reshape(4, crepe.window))
    assert isinstance(crepe, WindowedEar)
    full = crepe.frames(windows)
    for layer in ("conv1", "conv4", "conv6"):
        part = crepe.upto(windows, layer)
        assert part is not None and torch.equal(part, full[layer])
    assert crepe.upto(windows, "pitch") is None  # the top needs every block: no shortcut


def test_dream_spectrum_parameterisation_raises_activation(crepe: Ear) -> None:
    x = tone(0.2)
    frames = crepe.analyse(x)
    channel = middling_channels(frames["conv3"], 1)[0]
    out = sd.dream(crepe, x, Target("conv3", (channel,)), steps=6, lr=0.3, frames=None, param="spectrum")
    gain = float(crepe.analyse(out.audio)["conv3"][:, channel].mean() / frames["conv3"][:, channel].mean())
    print(f"crepe conv3:{channel} spectrum parameterisation gain x{gain:.2f}")
    assert gain > 1.5 and np.isfinite(out.audio).all()
