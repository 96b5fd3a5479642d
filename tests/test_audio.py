"""The audio process: sources with known answers, the output path, validation at the boundary."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from earsight.audio import AudioConfig, AudioEngine, Source, validate_source
from earsight.errors import BadRequest, NotFound

SR = 48000


def listen(engine: AudioEngine, source: Source, seconds: float = 0.5) -> np.ndarray:
    """Switch to ``source`` and return ``seconds`` of what the audio process captured after the switch."""
    engine.set_source(source)
    time.sleep(0.05)  # the 20 ms crossfade
    engine.input.read()
    want = int(seconds * SR)
    got: list[np.ndarray] = []
    deadline = time.monotonic() + 10 * seconds + 5
    while sum(len(g) for g in got) < want and time.monotonic() < deadline:
        got.append(engine.input.read()[:, 0])
        time.sleep(0.01)
    out = np.concatenate(got)
    assert out.size >= want, "the audio process stopped producing"
    return out[:want]


def frequency(x: np.ndarray) -> float:
    rising = np.where((x[:-1] < 0) & (x[1:] >= 0))[0]
    return float(SR / np.mean(np.diff(rising)))


def test_sine(audio: AudioEngine) -> None:
    x = listen(audio, Source("test", "sine", 1000.0))
    assert frequency(x) == pytest.approx(1000.0, rel=1e-3)
    assert np.max(np.abs(x)) == pytest.approx(0.5, rel=1e-3)


def test_click_train_has_one_impulse_per_period(audio: AudioEngine) -> None:
    x = listen(audio, Source("test", "clicks", 8.0), seconds=1.0)
    onsets = np.where(x > 0.5)[0]
    assert len(onsets) == 8
    assert np.allclose(np.diff(onsets), SR / 8, atol=1)


def test_noise_and_silence(audio: AudioEngine) -> None:
    noise = listen(audio, Source("test", "noise", 0.5))
    assert 0.2 < np.sqrt(np.mean(noise**2)) < 0.4  # uniform in [-0.5, 0.5]: rms 0.29
    assert np.max(np.abs(listen(audio, Source("silence"), 0.2))) == 0.0


def test_sweep_rises(audio: AudioEngine) -> None:
    x = listen(audio, Source("test", "sweep", 2.0), seconds=0.8)
    assert frequency(x[-4800:]) > frequency(x[:4800])


def test_file_plays_at_its_own_pitch_and_loops(audio: AudioEngine, tmp_path: Path) -> None:
    sr = 22050
    t = np.arange(int(0.25 * sr)) / sr
    path = tmp_path / "tone.ogg"
    soundfile.write(path, 0.5 * np.sin(2 * np.pi * 500 * t), sr)
    x = listen(audio, Source("file", str(path)), seconds=1.0)  # four times the file's length
    assert frequency(x) == pytest.approx(500.0, rel=2e-3)
    quarter = len(x) // 4
    assert all(np.sqrt(np.mean(x[i * quarter : (i + 1) * quarter] ** 2)) > 0.2 for i in range(4))


def test_demo_plays_pyos_sounds(audio: AudioEngine) -> None:
    x = listen(audio, Source("demo"), seconds=1.0)
    assert np.sqrt(np.mean(x**2)) > 0.005


def test_the_block_loop_asks_for_real_time_scheduling_and_says_whether_it_got_it(audio: AudioEngine) -> None:
    may = os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] > 0
    assert audio.realtime.startswith("yes (SCHED_FIFO" if may else "no:"), audio.realtime
    fast = AudioEngine(AudioConfig(backend="manual", sample_rate=SR, realtime=False), Source("silence"))
    fast.start()
    try:
        assert fast.realtime.startswith("no: the manual backend runs as fast as it can")
    finally:
        fast.stop()


def test_gain_scales_the_input(audio: AudioEngine) -> None:
    audio.set_gain(0.5)
    try:
        x = listen(audio, Source("test", "sine", 440.0))
        assert np.max(np.abs(x)) == pytest.approx(0.25, rel=1e-2)
    finally:
        audio.set_gain(1.0)


def test_gain_and_mix_survive_a_restart_of_the_audio_process(audio: AudioEngine) -> None:
    """They live in shared settings, not in the process: a new one plays at the same levels."""
    audio.set_source(Source("test", "sine", 440.0))
    audio.set_gain(0.5)
    audio.set_mix(0.5, 1.0)
    try:
        audio.restart()
        assert (audio.gain, audio.dry, audio.wet) == (0.5, 0.5, 1.0)
        x = listen(audio, Source("test", "sine", 440.0))
        assert np.max(np.abs(x)) == pytest.approx(0.25, rel=1e-2)
        audio.monitor.read()
        time.sleep(0.3)
        played = audio.monitor.read()
        assert np.max(np.abs(played)) == pytest.approx(0.125, rel=2e-2), "sine 0.5 x gain 0.5 x dry 0.5"
    finally:
        audio.set_gain(1.0)
        audio.set_mix(1.0, 1.0)


def test_output_carries_input_and_the_sonified_ring(audio: AudioEngine) -> None:
    listen(audio, Source("silence"), 0.1)
    audio.set_mix(1.0, 1.0)
    audio.monitor.read()
    wet = np.zeros((SR // 2, 2), np.float32)
    wet[:, 0], wet[:, 1] = 0.25, -0.25
    audio.output.write(wet)
    time.sleep(1.0)
    played = audio.monitor.read()
    assert np.isclose(played[:, 0], 0.25).sum() >= SR // 2 - 256
    assert np.isclose(played[:, 1], -0.25).sum() >= SR // 2 - 256
    assert audio.output.available() == 0


@pytest.mark.parametrize(
    ("source", "error", "reason"),
    [
        (Source("file", "/no/such.wav"), NotFound, "no such file"),
        (Source("test", "triangle"), BadRequest, "unknown test signal"),
        (Source("test", "sine", -5.0), BadRequest, "must be in"),
        (Source("test", "clicks", float("inf")), BadRequest, "must be in"),
        (Source("tape"), BadRequest, "unknown input kind"),
    ],
)
def test_bad_sources_are_refused_before_reaching_the_audio_process(source: Source, error: type, reason: str) -> None:
    with pytest.raises(error, match=reason):
        validate_source(source)


def test_a_file_that_is_not_audio_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("not audio")
    with pytest.raises(BadRequest, match="cannot read"):
        validate_source(Source("file", str(path)))


def test_a_continuous_wet_signal_plays_without_skips(audio: AudioEngine) -> None:
    listen(audio, Source("silence"), 0.1)
    audio.set_mix(0.0, 1.0)
    t = np.arange(3 * SR) / SR
    sine = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    audio.monitor.read()
    chunk = 1024
    for start in range(0, sine.size, chunk):  # a producer at the audio rate, a few blocks ahead
        while audio.output.available() > 4 * chunk:
            time.sleep(0.002)
        audio.output.write(np.repeat(sine[start : start + chunk, None], 2, axis=1))
    time.sleep(0.3)
    played = audio.monitor.read()[:, 0]
    audio.set_mix(1.0, 1.0)
    body = played[np.abs(played) > 0][SR // 10 : -SR // 10]  # away from the start and the end
    own = np.abs(np.diff(sine)).max()
    assert body.size > SR
    assert np.abs(np.diff(body)).max() <= own * 1.05, "a sample was skipped or repeated"


def test_the_counters_count_blocks_and_source_changes(audio: AudioEngine) -> None:
    before = audio.stats()
    listen(audio, Source("test", "sine", 440.0), 0.2)
    after = audio.stats()
    assert after["source_changes"] == before["source_changes"] + 1
    assert after["blocks"] - before["blocks"] >= 0.2 * SR / audio.config.block
    assert set(after) == {"blocks", "late_blocks", "output_underruns", "source_changes", "input_dropped", "restarts"}


def test_importing_the_audio_package_starts_no_audio_machinery() -> None:
    code = "import sys, earsight.audio; print(sorted(m for m in ('pyo', 'jack', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
