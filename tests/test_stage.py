"""The stage contract: the resampler and a chain of stages (every ear: tests/test_ear_contract.py)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from earsight.ears import crepe
from earsight.resample import Resampler, resample
from earsight.stage import Chain, Stage


def test_resampler_is_a_stage_counting_latency_at_its_output() -> None:
    r = Resampler(48000, 16000)
    assert isinstance(r, Stage)
    assert (r.rate_in, r.rate_out) == (48000, 16000)
    chain = Chain(r)
    assert isinstance(chain, Stage)
    assert chain.latency == r.latency and chain.seconds == r.latency / 16000


def test_latencies_add_on_one_clock() -> None:
    resampler, ear = Resampler(44100, 16000), crepe.tiny()
    chain = Chain(resampler, ear)
    assert (chain.rate_in, chain.rate_out) == (44100, 16000)
    assert chain.latency == resampler.latency + ear.latency
    assert chain.seconds == pytest.approx((resampler.latency + ear.latency) / 16000, rel=1e-12)


def test_earlier_latency_is_carried_through_a_rate_change() -> None:
    """Up to 48 kHz and back: the first stage's delay counts a third on the 16 kHz clock."""
    up, down = Resampler(16000, 48000), Resampler(48000, 16000)
    chain = Chain(up, down)
    assert chain.delay == Fraction(up.latency, 3) + down.latency
    # An impulse through both peaks where the summed delay says (to the nearest output sample).
    x = np.zeros(4000)
    x[1000] = 1.0
    y = chain.process(x)
    assert int(np.argmax(y)) == 1000 + chain.latency
    assert chain.seconds == pytest.approx(float(chain.delay) / 16000, rel=1e-12)


def test_chain_processes_and_resets_every_stage() -> None:
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal(44100 // 5)).astype(np.float32)
    ear = crepe.tiny()
    chain = Chain(Resampler(44100, 16000), ear)
    chain.process(x[:5000])  # some state in both stages
    chain.reset()
    parts = [chain.process(x[i : i + 1024]) for i in range(0, x.shape[0], 1024)]
    expected = ear.analyse(resample(x, 44100, 16000))
    for name in ear.layer_names:
        got = np.concatenate([p[name] for p in parts])
        np.testing.assert_allclose(
            got, expected[name], rtol=0, atol=1e-5 * max(1.0, float(np.abs(expected[name]).max()))
        )


def test_stages_must_meet_at_one_rate() -> None:
    with pytest.raises(ValueError, match="48000 Hz"):
        Chain(Resampler(16000, 48000), crepe.tiny())
    with pytest.raises(ValueError):
        Chain()
