"""The inputs dreams are judged on: made here (numpy), shipped by pyo, or rendered by fluidsynth
as the training data is (:mod:`earsight.train.data`). Each returns mono float32 at ``sr``;
all are repeatable (seeded, or files that do not change).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def pink(seconds: float, sr: int, *, level: float = 0.1, seed: int = 0) -> np.ndarray:
    """Pink noise (power 1/f from 20 Hz up) at RMS ``level``."""
    n = int(seconds * sr)
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    spectrum /= np.sqrt(np.maximum(f, 20.0))
    spectrum[f < 20.0] = 0.0
    x = np.fft.irfft(spectrum, n)
    return (x * level / max(float(np.sqrt(np.mean(x**2))), 1e-20)).astype(np.float32)


def near_silence(seconds: float, sr: int) -> np.ndarray:
    """White noise 80 dB below full scale: a room with nothing playing."""
    return (1e-4 * np.random.default_rng(7).standard_normal(int(seconds * sr))).astype(np.float32)


def chime(seconds: float, sr: int) -> np.ndarray:
    """The issue's chime: two steady partials near 2.7 and 7 kHz (7 kHz only where the rate allows)."""
    t = np.arange(int(seconds * sr)) / sr
    high = 0.1 * np.sin(2 * np.pi * 7000.0 * t) if sr > 14000 else 0.0
    return (0.2 * np.sin(2 * np.pi * 2700.0 * t) + high).astype(np.float32)


def pyo_sound(name: str, seconds: float, sr: int, offset: float = 0.0) -> np.ndarray:
    """``seconds`` of one of pyo's example sounds (drumloop.wav, flute.aif, ...), looped if short."""
    from ..audio import io, pyo_example_sound

    x = io.read(pyo_example_sound(name), sr, mono=True)[0].astype(np.float32)
    n = int(seconds * sr)
    start = int(offset * sr)
    return np.resize(x[start:] if start < x.size else x, n).astype(np.float32)


def drum_loop(seconds: float, sr: int) -> np.ndarray:
    return pyo_sound("drumloop.wav", seconds, sr)


def _fluidsynth(notes: Sequence[tuple[int, int, float, float, int]], seconds: float, sr: int) -> np.ndarray:
    from ..audio import io
    from ..train.data import midi_file, render_midi

    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "notes.mid", Path(tmp) / "notes.wav"
        mid.write_bytes(midi_file(notes))
        render_midi(mid, wav, reverb=False, chorus=False)
        x = io.read(wav, sr, mono=True)[0]
    x = np.pad(x, (0, max(0, int(seconds * sr) - x.size)))[: int(seconds * sr)]
    return (x * 0.2 / max(float(np.sqrt(np.mean(x**2))), 1e-9)).astype(np.float32)


def piano_chord(seconds: float, sr: int) -> np.ndarray:
    """A sustained C major chord on GM piano (fluidsynth), at RMS 0.2."""
    return _fluidsynth([(0, 0, 0.0, seconds + 1.0, p) for p in (48, 60, 64, 67, 72)], seconds, sr)


def chorale(seconds: float, sr: int) -> np.ndarray:
    """The opening of a Bach chorale (music21's corpus, bwv66.6) on GM string ensemble, fluidsynth."""
    from music21 import corpus

    score = corpus.parse("bach/bwv66.6")
    notes = []
    for part, line in enumerate(score.parts):
        for n in line.flatten().notes:
            start = float(n.offset) * 0.5  # 120 bpm: half a second a quarter
            if start < seconds:
                for p in getattr(n, "pitches", ()):
                    notes.append((part, 48, start, float(n.duration.quarterLength) * 0.5, int(p.midi)))
    return _fluidsynth(notes, seconds, sr)


BATTERY: dict[str, Callable[[float, int], np.ndarray]] = {
    "flute": lambda s, sr: pyo_sound("flute.aif", s, sr),
    "chorale": chorale,
    "drums": drum_loop,
    "pink": pink,
    "silence": near_silence,
    "chime": chime,
}
"""The battery the bench dreams on (the issue's: pyo's sounds, a chorale, a drum loop, pink
noise, near-silence; and the issue's own chime)."""
