"""Audio files: read back what was written at another rate, atomic writes, errors at the boundary."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from earsight.audio import io
from earsight.errors import BadRequest, NotFound

SR = 16000


def tone(hz: float, sr: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)
    return np.stack([x * (1 - 0.5 * c) for c in range(channels)], axis=1)


def peak_hz(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.shape[0])))
    return float(np.argmax(spectrum) * sr / x.shape[0])


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_written_audio_reads_back_at_another_rate(tmp_path: Path, suffix: str) -> None:
    path = io.write(tmp_path / f"tone{suffix}", tone(1000, 44100, 1.0, channels=2), 44100)
    same, sr = io.read(path)
    assert sr == 44100 and same.shape == (44100, 2) and same.dtype == np.float32
    assert np.abs(same - tone(1000, 44100, 1.0, channels=2)).max() < 1e-3  # 16-bit files
    x, sr = io.read(path, 16000)
    assert sr == 16000 and x.shape == (16000, 2)
    assert peak_hz(x[:, 0], sr) == pytest.approx(1000, abs=2)
    assert np.sqrt(np.mean(x[1000:-1000, 0] ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.01)
    assert np.allclose(x[:, 1], 0.5 * x[:, 0], atol=1e-3)  # channels stay apart
    mono, _ = io.read(path, 16000, mono=True)
    assert mono.shape == (16000,) and np.allclose(mono, 0.75 * x[:, 0], atol=1e-3)


def test_resample_keeps_shape_length_and_timing() -> None:
    x = np.zeros(4800, np.float32)
    x[2400] = 1.0
    y = io.resample(x, 48000, 16000)
    assert y.shape == (1600,) and y.dtype == np.float32
    assert int(np.argmax(y)) == 800  # no delay: an impulse stays where it was
    assert io.resample(np.zeros((0, 2)), 44100, 16000).shape == (0, 2)
    assert io.resample(np.ones((10, 2)), 16000, 16000).shape == (10, 2)
    with pytest.raises(BadRequest, match="positive"):
        io.resample(x, 0, 16000)


def test_a_failed_write_leaves_nothing_under_the_final_name(tmp_path: Path) -> None:
    # libsndfile creates the file, then refuses the rate: plain soundfile.write leaves it behind.
    path = tmp_path / "out.flac"
    with pytest.raises(RuntimeError, match="sample rate"):
        io.write(path, tone(440, 16000, 0.1), 1_000_000)
    assert list(tmp_path.iterdir()) == []
    io.write(path, tone(440, 16000, 0.1), 16000)
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="sample rate"):
        io.write(path, tone(440, 16000, 0.1), 1_000_000)
    assert path.read_bytes() == before and list(tmp_path.iterdir()) == [path]  # the old file intact
    with pytest.raises(BadRequest, match="suffix"):
        io.write(tmp_path / "out.txt", tone(440, 16000, 0.1), 16000)
    with pytest.raises(NotFound, match="no such folder"):
        io.write(tmp_path / "missing" / "out.wav", tone(440, 16000, 0.1), 16000)


def test_a_missing_file_is_not_found_and_a_bad_one_a_bad_request(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no such file"):
        io.read(tmp_path / "nothing.wav")
    with pytest.raises(NotFound, match="no such file"):
        io.info(tmp_path / "nothing.wav")
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    with pytest.raises(BadRequest, match="cannot read"):
        io.read(bad)
    with pytest.raises(BadRequest, match="cannot read"):
        io.info(bad)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_what_soundfile_cannot_read_ffmpeg_decodes(tmp_path: Path) -> None:
    wav, m4a = tmp_path / "tone.wav", tmp_path / "tone.m4a"
    io.write(wav, tone(440, 22050, 1.0, channels=2), 22050)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), "-c:a", "aac", str(m4a)], check=True)
    info = io.info(m4a)
    assert (info.sample_rate, info.channels) == (22050, 2)
    assert abs(info.frames - 22050) < 0.1 * 22050
    x, sr = io.read(m4a, 16000, mono=True)
    assert sr == 16000 and x.ndim == 1 and abs(x.shape[0] - 16000) < 1600
    assert peak_hz(x[2000:10000], sr) == pytest.approx(440, abs=3)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")
def test_mp3_decodes_at_its_pitch(tmp_path: Path) -> None:
    wav, mp3 = tmp_path / "tone.wav", tmp_path / "tone.mp3"
    io.write(wav, (0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)).astype(np.float32), SR)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(wav), str(mp3)], check=True)
    x, _ = io.read(mp3, SR, mono=True)
    assert abs(x.shape[0] - SR) < 0.1 * SR
    spectrum = np.abs(np.fft.rfft(x[: SR // 2]))
    assert abs(np.argmax(spectrum) * 2 - 440) <= 4  # 2 Hz bins
