"""The spread: a yardstick that means the same for every unit, so a dream's rise can be read anywhere."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sonify_signals import SR, tone

from earsight.ears.base import Ear
from earsight.sonify import spread as sp
from earsight.sonify.dream import DreamResult
from earsight.sonify.files import sonify_file
from earsight.sonify.params import defaults
from earsight.sonify.target import Target


def test_the_reference_audio_is_varied_repeatable_and_ours() -> None:
    a, b = sp.reference_audio(16000), sp.reference_audio(16000)
    assert np.array_equal(a, b) and a.dtype == np.float32 and 15 * 16000 < a.size < 25 * 16000
    assert np.isfinite(a).all() and 0.01 < float(np.sqrt(np.mean(a**2))) < 0.5 and np.abs(a).max() <= 1.0


def test_spreads_are_positive_cached_and_follow_the_selection(crepe: Ear) -> None:
    one = sp.spread(crepe, Target("conv4", (1,)))
    assert math.isfinite(one) and one > 0
    assert sp.spread(crepe, Target("conv4", (1,)), wait=False) == one  # cached: no waiting, same value
    frames = sp.reference_frames(crepe)["conv4"]
    assert frames.shape[1] == crepe.layer("conv4").channels
    assert one == pytest.approx(float(frames[:, 1].std()))
    # Averaging channels averages out their independent parts: the mean of many varies less.
    assert sp.spread(crepe, Target("conv4", ())) < float(np.mean([frames[:, c].std() for c in range(frames.shape[1])]))


def test_rise_in_spreads_means_something_for_any_unit() -> None:
    negative = DreamResult(np.zeros(1, np.float32), np.zeros(1, np.float32), -0.38, 2.65, 1, 0.0, spread=1.5)
    assert not hasattr(negative, "gain")  # no ratio of a signed mean ("x-6.97" meant nothing)
    assert negative.rise == pytest.approx(3.03) and negative.rise_spreads == pytest.approx(3.03 / 1.5)
    assert math.isnan(DreamResult(np.zeros(1), np.zeros(1), 1.0, 2.0, 1, 0.0).rise_spreads)  # no spread: unknown


def test_a_dream_of_a_file_reports_its_rise_in_spreads(crepe: Ear) -> None:
    values = {**defaults(), "layer": "conv4", "channel": 1, "iterations": 6}
    _, result = sonify_file(crepe, tone(0.5), SR, "dream", values)
    assert isinstance(result, DreamResult)
    assert result.spread == pytest.approx(sp.spread(crepe, Target("conv4", (1,))))
    assert math.isfinite(result.rise_spreads) and np.sign(result.rise_spreads) == np.sign(result.rise)
