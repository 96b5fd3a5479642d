"""The default library's sounds and a bed's audio: seamless loops, level-matched, weighted by power."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from earsight.match import bedaudio, beds, library, synth


@pytest.mark.parametrize("name", sorted(synth.SOUNDS))
def test_each_default_sound_is_a_seamless_loop_at_unit_rms(name: str) -> None:
    x = synth.make(name, seconds=4.0)
    assert x.shape == (int(4.0 * synth.SR), 2) and x.dtype == np.float32
    assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
    inner = np.abs(np.diff(x, axis=0)).max()
    joint = np.abs(x[0] - x[-1]).max()
    assert joint <= inner, f"{name}: the loop's joint jumps {joint:.3f}, more than any step inside ({inner:.3f})"
    assert np.abs(x).max() < 2 * synth.CREST  # peaks softly limited
    assert np.abs(x[:, 0] - x[:, 1]).max() > 0 or name in ("thunder", "fire")  # most are stereo


def test_sounds_are_repeatable_and_seeds_differ() -> None:
    a, b, c = synth.make("rain", 0, 1.0), synth.make("rain", 0, 1.0), synth.make("rain", 1, 1.0)
    assert np.array_equal(a, b) and not np.allclose(a, c)


def _lib(tmp_path, lengths: dict[str, float]) -> library.Library:
    rng = np.random.default_rng(0)
    for name, seconds in lengths.items():
        sf.write(tmp_path / f"{name}.wav", rng.standard_normal((int(seconds * 8000), 2)).astype(np.float32) * 0.1, 8000)
        (tmp_path / f"{name}.txt").write_text("seashore\n" if name == "a" else "cab\n")
    return library.load(tmp_path)


def test_a_bed_is_level_matched_and_weighted_by_power(tmp_path) -> None:
    lib = _lib(tmp_path, {"a": 2.0, "b": 2.0})
    ra = bedaudio.read(lib.sounds[0].path, 8000).astype(np.float64)
    for weights in ((0.8, 0.2), (0.5, 0.5)):
        out = bedaudio.mix(beds.Bed(("a", "b"), weights, 0.0), lib, 8000).astype(np.float64)
        assert out.shape == (int(bedaudio.BED_SECONDS * 8000), 2)
        assert 10 * np.log10(np.mean(out**2)) == pytest.approx(bedaudio.LEVEL_DB, abs=0.01)
        out = out[4000 : 4000 + ra.shape[0]]  # away from the joint: sound a's second repeat, in step
        ra_here = np.roll(ra, -4000, axis=0)
        # each sound's share of the power is its weight (they are uncorrelated noises)
        share_a = np.mean(out * ra_here) ** 2 / (np.mean(out**2) * np.mean(ra_here**2))
        assert share_a == pytest.approx(weights[0], abs=0.03)


def test_a_bed_of_unequal_lengths_loops_without_a_jump(tmp_path) -> None:
    lib = _lib(tmp_path, {"a": 30.0, "b": 1.3})  # one longer than a bed, one shorter
    out = bedaudio.mix(beds.Bed(("a", "b"), (0.5, 0.5), 0.0), lib, 8000)
    assert out.shape == (int(bedaudio.BED_SECONDS * 8000), 2)
    assert np.abs(out[0] - out[-1]).max() <= np.abs(np.diff(out, axis=0)).max()
    assert np.abs(out).max() <= bedaudio.PEAK
    longer = bedaudio.extend(out, 3 * out.shape[0] + 17)
    assert longer.shape[0] == 3 * out.shape[0] + 17 and np.array_equal(longer[: out.shape[0]], out)
