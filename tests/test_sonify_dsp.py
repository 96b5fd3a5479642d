"""The sonifiers' numpy helpers: known answers from synthetic signals."""

from __future__ import annotations

import numpy as np
import pytest
from sonify_signals import rms, tone

from earsight.sonify import dsp
from earsight.sonify.change import carry, largest_jump


def db(a: np.ndarray, b: np.ndarray) -> float:
    with np.errstate(divide="ignore"):  # silence: -inf dB
        return float(20 * np.log10(rms(a) / rms(b)))


def test_loudness_bound_leaves_a_signal_within_it_untouched() -> None:
    x = tone(0.2)
    y = (x + 0.05 * np.sin(np.arange(x.shape[0]) * 0.3)).astype(np.float32)
    assert abs(db(y, x)) < 3.0
    assert dsp.bound_loudness(x, y, 3.0) is y


@pytest.mark.parametrize("gain", [4.0, 1.5, 0.5, 0.1, 0.0])
def test_loudness_bound_holds_for_a_too_loud_or_too_quiet_change(gain: float) -> None:
    x = tone(0.2)
    noise = np.random.default_rng(3).standard_normal(x.shape).astype(np.float32)
    for y in (gain * x, (gain * x + 0.5 * noise * rms(x)).astype(np.float32)):
        out = dsp.bound_loudness(x, y, 3.0)
        assert abs(db(out, x)) <= 3.0, f"gain {gain}: {db(out, x):+.3f} dB"
        if abs(db(y, x)) > 3.0:
            # Moved toward the input only as far as needed: right at the bound, not the input.
            assert abs(db(out, x)) >= 3.0 - 0.01
            a = float(np.dot(out - x, y - x) / np.dot(y - x, y - x))  # out = x + a (y - x)
            assert 0.0 < a < 1.0 and np.allclose(out, x + a * (y - x), atol=1e-6)
        # A point between the two signals: no louder peak than theirs.
        assert np.abs(out).max() <= max(np.abs(x).max(), np.abs(y).max()) + 1e-6


def test_loudness_bound_of_zero_db_is_the_input() -> None:
    x = tone(0.1)
    out = dsp.bound_loudness(x, 2 * x, 0.0)
    assert np.allclose(out, x)


def test_crossfade_gains_sum_to_one() -> None:
    ones = np.ones((64, 2), np.float32)
    assert np.allclose(dsp.crossfade(ones, ones), 1.0, atol=1e-6)  # equal-gain: no swell
    ramp = dsp.crossfade(np.zeros(64, np.float32), np.ones(64, np.float32))
    assert np.all(np.diff(ramp) > 0) and ramp[0] < 0.01 and ramp[-1] > 0.99


def test_soft_limit_is_identity_below_the_threshold_and_bounded_above() -> None:
    x = np.linspace(-3, 3, 6001).astype(np.float32)
    y = dsp.soft_limit(x)
    quiet = np.abs(x) <= 0.8
    assert np.array_equal(y[quiet], x[quiet])
    assert np.abs(y).max() <= 1.0 and np.all(np.diff(y) >= 0) and np.abs(y[np.abs(x) <= 1.5]).max() < 1.0


def test_overlap_add_restores_the_signal() -> None:
    x = tone(0.1)
    n_fft, hop = 1024, 256
    spec = dsp.stft_frames(x, n_fft, hop)
    assert spec.shape == ((x.shape[0] - n_fft) // hop + 1, n_fft // 2 + 1)
    y = dsp.resynthesise(spec, n_fft, hop, x.shape[0])
    inner = slice(n_fft, (spec.shape[0] - 1) * hop)  # where windows fully overlap
    assert np.allclose(y[inner], x[inner], atol=1e-5)
    assert dsp.stft_hop(160, 1024) == 160 and dsp.stft_hop(8192, 512) == 128


def test_a_live_change_carries_on_where_it_left_off() -> None:
    """The warm start moves the last change into the past and continues it into the new audio
    (its own last chunk again); the joint is a crossfade, not the step a plain copy would make."""
    rng = np.random.default_rng(3)
    previous = np.cumsum(rng.standard_normal(4800)).astype(np.float32) * 1e-3  # a wandering change
    previous += np.linspace(0.0, 0.5, previous.size, dtype=np.float32)  # its start and end far apart
    out = carry(previous, 3200, 4800, fade=64)
    assert out.shape == (4800,)
    np.testing.assert_array_equal(out[: 1600 - 64], previous[3200 : 4800 - 64])  # the past, moved
    np.testing.assert_array_equal(out[1600:], np.resize(previous[1600:], 3200))  # continued: its last 3200 again
    step = abs(float(previous[-1] - previous[1600]))  # where a plain copy would join
    assert step > 20 * largest_jump(previous)
    assert largest_jump(out[1600 - 64 : 1600 + 1]) <= 2 * largest_jump(previous) + 0.05 * step
    # More new audio than the change held: the continuation repeats; none: nothing moves.
    assert carry(previous[:100], 300, 400).shape == (400,)
    np.testing.assert_array_equal(carry(previous, 0, 4800), previous)
