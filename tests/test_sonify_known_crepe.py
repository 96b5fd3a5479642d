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


def cents(a: float, b: float) -> float:
    return 1200 * math.log2(a / b)


@pytest.mark.parametrize("hz", [110.0, 220.0, 440.0, 880.0, 1760.0])
def test_dreaming_a_crepe_pitch_bin_on_pink_noise_puts_its_pitch_there(crepe: Ear, hz: float) -> None:
    """The dream's strongest spectral peak lies within 50 cents of the bin's frequency; or, for
    a tone whose second or third harmonic is its strongest (as the low bins' dreams are: CREPE
    hears the fundamental of such a tone), on that harmonic, with the pitch the whole spectrum
    implies (subharmonic summation) within 50 cents of the bin."""
    k = int(round(float(hz_to_bins(hz))))
    target_hz = float(bins_to_hz(k))
    x = pink(1.0, crepe.sample_rate)
    out = sd.dream(crepe, x, Target("pitch", (k,)), steps=160, seed=k)
    peak = peak_frequency(out.audio, crepe.sample_rate)
    pitch = harmonic_pitch(out.audio, crepe.sample_rate)
    harmonic = min((1, 2, 3), key=lambda h: abs(cents(peak, h * target_hz)))
    print(f"crepe pitch bin {k} ({target_hz:.1f} Hz): strongest peak {peak:.1f} Hz ({cents(peak, target_hz):+.0f} cents; "
          f"harmonic {harmonic}: {cents(peak, harmonic * target_hz):+.0f} cents), pitch by subharmonic summation "
          f"{pitch:.1f} Hz ({cents(pitch, target_hz):+.0f} cents; pink alone {harmonic_pitch(x, crepe.sample_rate):.1f} Hz), "
          f"salience {crepe.analyse(x)['pitch'][:, k].mean():.3f} -> {crepe.analyse(out.audio)['pitch'][:, k].mean():.3f}")
    assert abs(cents(peak, harmonic * target_hz)) <= 50.0
    if harmonic > 1:
        assert abs(cents(pitch, target_hz)) <= 50.0
