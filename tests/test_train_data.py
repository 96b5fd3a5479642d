"""The data recipe's variety and shards: varied renderings of a score, and parts for several machines."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from earsight.audio import io
from earsight.train import data
from earsight.train.drums import HYDROGEN_KITS

SR = data.SAMPLE_RATE


@pytest.mark.skipif(not data.SOUNDFONT.exists() or shutil.which("fluidsynth") is None, reason="needs fluidsynth")
def test_varied_renderings_move_key_and_tempo_and_leave_the_written_one_alone(tmp_path: Path) -> None:
    pytest.importorskip("music21")
    # No length cap (scores stay under 240 quarter notes anyway): a capped rendering hides its tempo.
    plain = data.build_scores(tmp_path / "a", count=1, seed=3, max_seconds=1e4)
    varied = data.build_scores(tmp_path / "b", count=1, seed=3, variations=2, max_seconds=1e4)
    assert len(plain) == 1 and len(varied) == 3
    written = io.read(tmp_path / "a" / plain[0].path, SR)[0]
    assert np.array_equal(written, io.read(tmp_path / "b" / varied[0].path, SR)[0])
    for item in varied[1:]:
        fields = dict(part.strip().split(" ", 1) for part in item.detail.split(";")[1:])
        semitones, tempo = int(fields["transposed"]), float(fields["tempo"].lstrip("x"))
        assert -5 <= semitones <= 6 and 0.8 <= tempo <= 1.25
        audio = io.read(tmp_path / "b" / item.path, SR)[0]
        # The same notes at 1/tempo of the length (within 5 %: the release tail does not scale).
        assert abs(audio.shape[0] * tempo / written.shape[0] - 1) < 0.05, (audio.shape[0], written.shape[0], tempo)
    assert {i.path for i in varied} == {p.relative_to(tmp_path / "b").as_posix() for p in (tmp_path / "b").rglob("*.flac")}


@pytest.mark.skipif(not HYDROGEN_KITS.exists(), reason="needs Debian hydrogen-drumkits")
def test_shards_of_the_drums_together_are_the_whole(tmp_path: Path) -> None:
    whole = data.build_drums(tmp_path / "whole", count=5, seed=1)
    parts = [data.build_drums(tmp_path / f"s{i}", count=5, seed=1, shard=(i, 2)) for i in range(2)]
    assert sorted(i.path for p in parts for i in p) == sorted(i.path for i in whole)
    assert not {i.path for i in parts[0]} & {i.path for i in parts[1]}
    for i, part in enumerate(parts):
        for item in part:
            assert np.array_equal(io.read(tmp_path / f"s{i}" / item.path, SR)[0], io.read(tmp_path / "whole" / item.path, SR)[0])


def test_a_shard_outside_its_count_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shard 2/2"):
        data.build(tmp_path, scores=0, drums=0, music=(), shard=(2, 2))


def _pitch_classes(audio: np.ndarray) -> np.ndarray:
    """Spectral energy per pitch class (C = 0) between 100 Hz and 2 kHz."""
    power = np.abs(np.fft.rfft(audio)) ** 2
    hz = np.fft.rfftfreq(audio.shape[0], 1 / SR)
    band = (hz > 100) & (hz < 2000)
    cls = np.round(12 * np.log2(hz[band] / 440.0) + 9).astype(int) % 12  # A = 9
    return np.bincount(cls, weights=power[band], minlength=12)


@pytest.mark.skipif(not data.SOUNDFONT.exists() or shutil.which("fluidsynth") is None, reason="needs fluidsynth")
def test_twins_are_the_same_music_in_another_key_and_leave_the_rest_alone(tmp_path: Path) -> None:
    pytest.importorskip("music21")
    plain = data.build_scores(tmp_path / "a", count=2, seed=3)
    paired = data.build_scores(tmp_path / "b", count=2, seed=3, twins=True)
    assert [i.path for i in paired[::2]] == [i.path for i in plain]  # the originals keep their names
    for original, twin in zip(paired[::2], paired[1::2], strict=True):
        assert data.twin_base(Path(twin.path)) == Path(original.path)
        a = io.read(tmp_path / "b" / original.path, SR, mono=True)[0]
        assert np.array_equal(a, io.read(tmp_path / "a" / original.path, SR, mono=True)[0])
        b = io.read(tmp_path / "b" / twin.path, SR, mono=True)[0]
        shift = int(twin.detail.rsplit("twin transposed ", 1)[1])
        assert shift in data.TWIN_SHIFTS and original.detail.split(";")[1] == twin.detail.split(";")[1]  # same programs
        assert abs(b.shape[0] - a.shape[0]) < 0.05 * a.shape[0]  # same tempo
        # The key moved by the shift: the twin's pitch-class profile is the original's turned by it.
        pa, pb = _pitch_classes(a), _pitch_classes(b)
        fits = [np.corrcoef(np.roll(pa, r), pb)[0, 1] for r in range(12)]
        assert int(np.argmax(fits)) == shift % 12, (fits, shift)


def test_clips_draw_a_twin_at_its_originals_time_and_level(tmp_path: Path) -> None:
    from earsight.train.clips import Clips, split_files

    ramp = np.linspace(0.01, 0.45, 5 * SR).astype(np.float32)
    paths = {"0000_x.flac": ramp, "0000_x_twin.flac": -ramp, "0001_y.flac": np.full(4 * SR, 0.3, np.float32)}
    for name, audio in paths.items():
        io.write(tmp_path / name, audio, SR)
    files = [tmp_path / n for n in paths]
    clips = Clips(files, SR, SR)
    assert clips.pairs == [(0, 1)]
    x = clips.draw(4, np.random.default_rng(0), twins=1).numpy()
    assert np.allclose(x[1], -x[0], atol=2e-4) and x[0].min() > 0  # the same span, the same level
    with pytest.raises(ValueError, match="do not fit"):
        clips.draw(1, np.random.default_rng(0), twins=1)
    with pytest.raises(ValueError, match="--twins"):
        Clips(files[2:], SR, SR).draw(2, np.random.default_rng(0), twins=1)
    # A twin is held out with its original, whatever the hash of its own name says.
    many = [tmp_path / f"{i:04d}_s{f}.flac" for i in range(60) for f in ("", "_twin")]
    train, val = split_files(many, 30)
    assert {data.twin_base(p) for p in train}.isdisjoint({data.twin_base(p) for p in val})
    assert len(val) % 2 == 0 and val
