"""Known answers you can hear: a dream of one of CREPE's ``pitch`` bins (each has a frequency)
must have that pitch. Every figure is
judged by plain DSP (:mod:`earsight.sonify.judge`), never by the ear that dreamed. Torch runs on
1 and on 2 threads (``torch_threads``); measured figures print with ``pytest -s``.
"""

from __future__ import annotations

import math

import pytest

from earsight.ears.base import Ear
from earsight.ears.crepe import bins_to_hz, hz_to_bins
from earsight.sonify import dream as sd
from earsight.sonify.judge import harmonic_pitch, peak_frequency
from earsight.sonify.signals import pink
from earsight.sonify.target import Target

pytestmark = pytest.mark.usefixtures("torch_threads")

SHORT = "CREPE's high bins on pink noise: the dream raises the bin (salience 0 -> 0.5-0.7) but its pitch lands near 590 Hz"


@pytest.mark.parametrize(
    "hz",
    [110.0, 220.0, 440.0,
     pytest.param(880.0, marks=pytest.mark.xfail(strict=True, reason=SHORT)),
     pytest.param(1760.0, marks=pytest.mark.xfail(strict=True, reason=SHORT))],
)
def test_dreaming_a_crepe_pitch_bin_on_pink_noise_puts_its_pitch_there(crepe: Ear, hz: float) -> None:
    """Within 50 cents of the bin's frequency: the pitch the spectrum implies (subharmonic
    summation). The strongest single peak is printed beside it: the dream often makes the second
    harmonic the strongest (CREPE hears the fundamental of such a tone), so that one is no test."""
    k = int(round(float(hz_to_bins(hz))))
    target_hz = float(bins_to_hz(k))
    x = pink(1.0, crepe.sample_rate)
    out = sd.dream(crepe, x, Target("pitch", (k,)), steps=160, seed=k)
    pitch = harmonic_pitch(out.audio, crepe.sample_rate)
    before = harmonic_pitch(x, crepe.sample_rate)
    peak = peak_frequency(out.audio, crepe.sample_rate)
    cents = 1200 * math.log2(pitch / target_hz)
    salience = crepe.analyse(out.audio)["pitch"][:, k].mean()
    print(f"crepe pitch bin {k} ({target_hz:.1f} Hz): dreamed pitch {pitch:.1f} Hz ({cents:+.0f} cents; pink alone "
          f"{before:.1f} Hz), strongest peak {peak:.1f} Hz ({1200 * math.log2(peak / target_hz):+.0f} cents), "
          f"salience {crepe.analyse(x)['pitch'][:, k].mean():.3f} -> {salience:.3f}")
    assert abs(cents) <= 50.0
