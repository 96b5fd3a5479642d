"""Auralise: known answers from clicks and from features that never fire."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sonify_signals import SR, clicks, tone

from earsight.ears.base import Ear
from earsight.errors import BadRequest
from earsight.sonify.deconv import auralise

pytestmark = pytest.mark.usefixtures("torch_threads")


def test_auralise_click_train_puts_mask_energy_at_clicks(crepe: Ear) -> None:
    x, at = clicks(1.0)
    frames = crepe.analyse(x)["conv2"]  # (frames, channels, positions)
    ends = (np.arange(frames.shape[0]) + 1) * crepe.hop
    near = np.zeros(frames.shape[0], bool)
    for c in at:
        near |= (ends - crepe.window <= c) & (c < ends)
    per_channel = frames.mean(axis=2)
    contrast = (per_channel[near].mean(0) - per_channel[~near].mean(0)) / (per_channel.std(0) + 1e-9)
    onset = int(np.argmax(contrast))  # the channel that responds to onsets
    result = auralise(crepe, x, "conv2", onset)
    energy = result.mask.sum(axis=0)  # per STFT frame
    g = np.arange(result.mask.shape[1])
    start = g * result.hop - result.pad  # input sample where STFT frame g starts
    at_click = np.zeros(g.shape, bool)
    for c in at:
        at_click |= (start <= c) & (c < start + result.n_fft)
    share = float(energy[at_click].sum() / energy.sum())
    print(f"conv2:{onset} mask energy at clicks {share:.2f} of the total, in {at_click.mean():.2f} of the frames")
    assert share >= 0.6 and share >= 2.0 * at_click.mean()
    assert result.audio.shape == x.shape and np.isfinite(result.audio).all()


def test_auralise_feature_that_never_fires_is_silent(crepe: Ear) -> None:
    found = None
    for hz in (880.0, 1760.0, 3520.0, 110.0):
        t = np.arange(SR // 2) / SR
        x = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
        frames = crepe.analyse(x)
        for layer in ("conv3", "conv5", "conv6", "conv2"):
            floor, gain = crepe.resting(layer) or (None, None)
            assert floor is not None and gain is not None
            fired = np.abs((frames[layer] - floor[None, :, None]) / gain[None, :, None]).max(axis=(0, 2))
            dead = np.where(fired == 0)[0]
            if dead.size:
                found = (x, layer, int(dead[0]))
                break
        if found:
            break
    assert found is not None, "no CREPE channel stays silent on any of the test sines"
    x, layer, channel = found
    silent = auralise(crepe, x, layer, channel)
    print(f"{layer}:{channel} never fires: mask peak {silent.peak}, output peak {np.abs(silent.audio).max()}")
    assert silent.peak == 0.0 and silent.mask.max() == 0.0 and np.abs(silent.audio).max() == 0.0
    live = int(np.argmax(crepe.analyse(x)[layer].max(axis=(0, 2))))
    assert auralise(crepe, x, layer, live).peak > 0.0  # the same input does light others up


def test_auralise_unknown_layer_or_channel_is_a_bad_request(crepe: Ear) -> None:
    x = tone(0.1)
    with pytest.raises(BadRequest):
        auralise(crepe, x, "conv9", 0)
    with pytest.raises(BadRequest):
        auralise(crepe, x, "conv2", 16)


def test_crepe_network_input_is_the_normalised_window(crepe: Ear) -> None:
    """CREPE's deconvnet stops at the normalised window; the gain (its std) leads back to audio."""
    windows = torch.from_numpy(tone(0.2)[: 3 * crepe.window].reshape(3, crepe.window)) * torch.tensor([[1.0], [0.1], [0.01]])
    own = crepe.network_input(windows, "conv3")
    assert own is not None
    leaf, acts, gain = own
    assert leaf.requires_grad and gain.shape == (3, 1)
    centred = windows - windows.mean(dim=-1, keepdim=True)
    assert torch.allclose(leaf * gain, centred, atol=1e-6)
    ahead = crepe.upto(windows, "conv3")
    assert ahead is not None and torch.allclose(acts, ahead, atol=1e-5)  # (autograd may pick other kernels)
    assert crepe.network_input(windows, "pitch") is None and crepe.resting("pitch") is None
