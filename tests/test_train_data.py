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
