"""`earsight analyse`: offline activations and a plot from a file, with known answers."""

from pathlib import Path

import numpy as np
import soundfile

from earsight.cli import main


def test_analyse_writes_activations_and_a_plot_of_a_known_glide(tmp_path: Path) -> None:
    sr = 44100
    t = np.arange(2 * sr) / sr
    hz = 220.0 * 2.0 ** t  # one octave per second: 220 -> 880 Hz
    path = tmp_path / "glide.wav"
    soundfile.write(path, 0.4 * np.sin(2 * np.pi * np.cumsum(hz) / sr), sr)
    assert main(["analyse", str(path), "--ear", "crepe"]) == 0
    result = np.load(tmp_path / "glide.crepe.npz")
    assert result["layer/conv1"].shape == (200, 128)  # each channel's mean over its positions
    assert result["layer/pitch"].shape == (200, 360)
    assert result["layer_energy"].shape == (200, 7)
    # A frame shows the sine of its window's middle, which `time` gives: 512 samples (32 ms) before it ends.
    assert np.allclose(result["window_end"] - result["time"], 0.032)
    expected = 220.0 * 2.0 ** result["time"]
    sure = result["pitch_confidence"] > 0.5
    assert sure.mean() > 0.9
    cents = 1200 * np.abs(np.log2(result["pitch_hz"][sure] / expected[sure]))
    assert np.median(cents) < 25, np.median(cents)
    png = tmp_path / "glide.crepe.png"
    assert png.stat().st_size > 20_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_analyse_of_a_missing_file_fails_clearly(tmp_path: Path) -> None:
    assert main(["analyse", str(tmp_path / "nope.wav")]) == 2
