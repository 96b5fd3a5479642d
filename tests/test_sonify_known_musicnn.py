"""Known answers you can hear: musicnn's tags name instruments; dreaming ``drums`` into a piano
chord must make it more percussive, ``piano`` into a drum loop more harmonic. Every figure is
judged by plain DSP (:mod:`earsight.sonify.judge`), never by the ear that dreamed. Torch runs on
1 and on 2 threads (``torch_threads``); measured figures print with ``pytest -s``.
"""

from __future__ import annotations

import numpy as np
import pytest

from earsight.ears import registry
from earsight.ears.base import Ear
from earsight.errors import NotFound
from earsight.sonify import dream as sd
from earsight.sonify.judge import harmonic_fraction, judge, spectral_flux
from earsight.sonify.params import defaults
from earsight.sonify.signals import drum_loop, piano_chord
from earsight.sonify.target import Target

pytestmark = pytest.mark.usefixtures("torch_threads")


@pytest.fixture(scope="module")
def musicnn_ear() -> Ear:
    try:
        return registry.load("musicnn")
    except (NotFound, ImportError, FileNotFoundError) as exc:
        pytest.skip(f"musicnn: not available ({exc})")


def _tag_dream(ear: Ear, x: np.ndarray, tag: str) -> tuple[np.ndarray, float, float, float]:
    assert ear.labels is not None
    k = ear.labels.index(tag)
    target = Target("tags", (k,))
    out = sd.dream(ear, x, target, steps=int(defaults()["iterations"]), seed=k)  # the defaults, as a user gets them
    v = judge(ear, x, out.audio, target)
    before = float(ear.analyse(x)["tags"][:, k].mean())
    after = float(ear.analyse(out.audio)["tags"][:, k].mean())
    print(f"musicnn {tag}: {before:.3f} -> {after:.3f} ({v.rise:+.2f} spreads, noise {v.noise:+.2f}), "
          f"{v.loudness:+.2f} dB, jump x{v.jump:.2f}, {out.seconds:.0f} s")
    assert abs(v.loudness) <= 3.0 and v.jump <= 1.0
    return out.audio, v.rise, v.noise, after - before


def test_dreaming_drums_on_a_piano_chord_raises_the_tag_and_the_flux(musicnn_ear: Ear) -> None:
    x = piano_chord(3.5, musicnn_ear.sample_rate)
    y, rise, noise, _ = _tag_dream(musicnn_ear, x, "drums")
    flux_before, flux_after = spectral_flux(x), spectral_flux(y)
    print(f"  spectral flux {flux_before:.4f} -> {flux_after:.4f}")
    assert rise >= 1.0 and rise >= 3 * max(noise, 0.0)
    assert flux_after >= 1.2 * flux_before


def test_dreaming_piano_on_a_drum_loop_raises_the_tag_and_the_harmonic_energy(musicnn_ear: Ear) -> None:
    x = drum_loop(3.5, musicnn_ear.sample_rate)
    y, rise, noise, _ = _tag_dream(musicnn_ear, x, "piano")
    h_before, h_after = harmonic_fraction(x), harmonic_fraction(y)
    print(f"  harmonic fraction {h_before:.3f} -> {h_after:.3f}")
    assert rise >= 1.0 and rise >= 3 * max(noise, 0.0)
    assert h_after >= h_before + 0.05
