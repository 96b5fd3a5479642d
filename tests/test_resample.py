"""Known answers for the polyphase resampler, and streaming equal to one shot."""

from __future__ import annotations

import numpy as np
import pytest

from earsight.resample import Resampler, resample

RATES = [(48000, 16000), (44100, 16000), (22050, 16000), (16000, 48000), (8000, 16000)]


def sine(hz: float, sr: int, seconds: float) -> np.ndarray:
    return np.sin(2 * np.pi * hz * np.arange(int(sr * seconds)) / sr).astype(np.float32)


@pytest.mark.parametrize(
    ("sr_in", "sr_out", "up", "down"),
    [
        (48000, 16000, 1, 3),
        (44100, 16000, 160, 441),
        (16000, 48000, 3, 1),
        (16000, 16000, 1, 1),
    ],
)
def test_ratio_is_reduced_fraction(sr_in: int, sr_out: int, up: int, down: int) -> None:
    r = Resampler(sr_in, sr_out)
    assert (r.up, r.down) == (up, down)


def test_identity_is_passthrough_without_latency() -> None:
    x = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    r = Resampler(16000, 16000)
    assert r.latency == 0
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)
    np.testing.assert_array_equal(np.concatenate([r.process(x[:300]), r.process(x[300:])]), x)


@pytest.mark.parametrize(("sr_in", "sr_out"), RATES)
def test_output_length(sr_in: int, sr_out: int) -> None:
    for n in (0, 1, 7, 1000, 44101):
        y = resample(np.zeros(n, np.float32), sr_in, sr_out)
        assert y.shape == (-(-n * sr_out // sr_in),)
        assert resample(np.zeros(n, np.float32), sr_in, sr_out, aligned=True).shape == y.shape


@pytest.mark.parametrize(("sr_in", "sr_out"), RATES)
def test_streaming_equals_one_shot(sr_in: int, sr_out: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(sr_in // 2).astype(np.float32)
    offline = resample(x, sr_in, sr_out)
    r = Resampler(sr_in, sr_out)
    for sizes in ([64] * 10_000, [512] * 1000, [4096] * 100, list(rng.integers(0, 3000, 1000))):
        r.reset()
        pieces, start = [], 0
        for size in sizes:
            if start >= x.shape[0]:
                break
            pieces.append(r.process(x[start : start + size]))
            start += size
        np.testing.assert_allclose(np.concatenate(pieces), offline, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("sr_in", "sr_out"), RATES)
def test_impulse_peaks_at_declared_latency(sr_in: int, sr_out: int) -> None:
    r = Resampler(sr_in, sr_out)
    # An impulse at an input sample that falls exactly on an output instant.
    x = np.zeros(sr_in // 10)
    step = sr_in // np.gcd(sr_in, sr_out)  # input samples between common instants
    at = 3 * step
    x[at] = 1.0
    y = r.process(x)
    assert int(np.argmax(y)) == at * sr_out // sr_in + r.latency


@pytest.mark.parametrize(("sr_in", "sr_out"), RATES)
def test_aligned_sine_matches_ideal(sr_in: int, sr_out: int) -> None:
    # 1 kHz is well inside every pass band; skip the filter's start-up and wind-down.
    y = resample(sine(1000, sr_in, 0.5), sr_in, sr_out, aligned=True)
    ideal = sine(1000, sr_out, 0.5)
    edge = 200
    np.testing.assert_allclose(y[edge:-edge], ideal[edge : y.shape[0] - edge], atol=2e-3)


def test_unity_gain_at_dc() -> None:
    for sr_in, sr_out in RATES:
        y = resample(np.ones(sr_in // 10, np.float64), sr_in, sr_out)
        np.testing.assert_allclose(y[-100:], 1.0, atol=1e-3)


def test_aliases_are_rejected() -> None:
    # 12 kHz at 48 kHz would fold onto 4 kHz at 16 kHz; the filter must remove it.
    x = sine(12000, 48000, 0.5)
    y = resample(x, 48000, 16000)[200:]
    assert np.sqrt(np.mean(y**2)) < 1e-3 * np.sqrt(np.mean(x**2))


def test_dtype() -> None:
    assert resample(np.zeros(480, np.float32), 48000, 16000).dtype == np.float32
    assert resample(np.zeros(480, np.int16), 48000, 16000).dtype == np.float32
    assert resample(np.zeros(480, np.float64), 48000, 16000).dtype == np.float64


def test_reset_forgets_history() -> None:
    x = np.random.default_rng(2).standard_normal(4800)
    r = Resampler(48000, 16000)
    first = r.process(x)
    r.process(np.ones(1000))
    r.reset()
    np.testing.assert_array_equal(r.process(x), first)


def test_bad_rates() -> None:
    with pytest.raises(ValueError):
        Resampler(0, 16000)
    with pytest.raises(ValueError):
        Resampler(44100.5, 16000)  # type: ignore[arg-type]
