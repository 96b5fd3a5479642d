"""The key probe's data: Bach chorales from the music21 corpus, each rendered in a few keys.

A chorale's key (tonic and mode) is what music21's key analysis (Krumhansl-Schmuckler on the
score) says; transposed by ``t`` semitones its tonic moves by ``t``. Each chosen chorale is
rendered (fluidsynth, FluidR3_GM, one random GM program per part, as :func:`data.build_scores`
does) transposed into a few keys. The target tonics are dealt from shuffled decks of the twelve
pitch classes, so every tonic turns up about equally often, and the transposition reaching one
lies in -5..+6 semitones. Everything is seeded; files live only in a temporary folder (music21
keeps its own parse cache in the system's temporary folder, as :func:`data.build_scores` does).
"""

from __future__ import annotations

import random
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import io
from .data import MELODIC_PROGRAMS, SAMPLE_RATE, SOUNDFONT, render_midi

PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
CHORALE = re.compile(r"^bwv\d+\.\d+\.mxl$")
"""The corpus's four-part chorales (``bwv10.7.mxl``), not their variants (``bwv248.9-s.mxl``)."""


def key_class(tonic: int, mode: str) -> int:
    """The 24 keys as classes: ``tonic`` pitch class for major, ``12 + tonic`` for minor."""
    return tonic % 12 + (12 if mode == "minor" else 0)


def key_name(label: int) -> str:
    return f"{PITCH_NAMES[label % 12]} {'minor' if label >= 12 else 'major'}"


@dataclass
class Rendering:
    """One chorale rendered in one key."""

    chorale: str
    """The corpus file's stem (``bwv10.7``): the unit of the train/test split."""
    transpose: int
    """Semitones from the written key."""
    key: int
    """:func:`key_class` of the rendered key."""
    programs: list[int]
    audio: np.ndarray
    """16 kHz mono."""


def _deal(deck: list[int], k: int, rng: random.Random) -> list[int]:
    """``k`` distinct tonics off the top of ``deck``, refilled with a shuffled twelve when short."""
    picked: list[int] = []
    while len(picked) < k:
        i = next((i for i, pc in enumerate(deck) if pc not in picked), None)
        if i is None:
            deck.extend(rng.sample(range(12), 12))
            continue
        picked.append(deck.pop(i))
    return picked


def chorale_paths(seed: int) -> list[str]:
    """Every four-part chorale of the corpus in a seeded order."""
    from music21 import corpus  # optional dependency (extra "train")

    paths = sorted(str(p) for p in corpus.getComposer("bach") if CHORALE.match(Path(p).name))
    random.Random(seed).shuffle(paths)
    return paths


def in_keys(midi: Any, keys: Sequence[tuple[int, Sequence[int]]]) -> Any:
    """A ``mido.MidiFile`` playing ``midi`` once per ``(transpose, programs)`` of ``keys``, back
    to back (copy ``i`` starts at ``i * midi.length`` seconds; the tempo map repeats with it):
    every note moved by ``transpose`` semitones, the ``k``-th track that has notes on a channel
    of its own (never 10, the drums) playing ``programs[k]``. (music21 puts parts that share an
    instrument on one channel.) One file for every key spares fluidsynth loading its soundfont
    once a key, which costs more than rendering a chorale.
    """
    import mido

    span = max(sum(m.time for m in track) for track in midi.tracks)  # ticks of one copy
    out = mido.MidiFile(type=1, ticks_per_beat=midi.ticks_per_beat)
    k = 0
    for track in midi.tracks:
        notes = any(m.type == "note_on" for m in track)
        ch = k + (k >= 9)
        new, now = mido.MidiTrack(), 0
        for i, (transpose, programs) in enumerate(keys):
            tick = i * span
            if notes:
                new.append(
                    mido.Message("program_change", channel=ch, program=programs[k], time=tick - now)
                )
                now = tick
            for m in track:
                tick += m.time
                if m.type == "end_of_track":
                    continue
                if m.type in ("note_on", "note_off", "polytouch"):
                    m = m.copy(note=m.note + transpose)  # mido refuses notes outside 0..127
                elif m.type == "program_change":
                    m = m.copy(program=programs[k])
                if notes and hasattr(m, "channel"):
                    m = m.copy(channel=ch)
                new.append(m.copy(time=tick - now))
                now = tick
        new.append(mido.MetaMessage("end_of_track", time=len(keys) * span - now))
        out.tracks.append(new)
        k += notes
    return out


def chorale_renderings(
    count: int, *, transpositions: int = 3, seed: int = 0, min_seconds: float = 5.0
) -> list[Rendering]:
    """``count`` chorales (seeded choice), each rendered in ``transpositions`` keys.

    music21 writes a chorale's MIDI once (repeats expanded, ties joined); its keys are that file
    moved by ``t`` semitones with a GM program per part, back to back (:func:`in_keys`), rendered
    by one fluidsynth call and cut at the copies' starts. (A music21 transpose and write and a
    fluidsynth call for every key took twice as long.)
    Chorales music21 cannot parse or analyse into a major or minor key, or that fail to render
    or come out shorter than ``min_seconds``, are skipped (with all their keys).
    """
    if shutil.which("fluidsynth") is None or not SOUNDFONT.exists():
        raise RuntimeError("needs Debian packages fluidsynth and fluid-soundfont-gm")
    import mido
    from music21 import corpus  # optional dependency (extra "train")

    rng = random.Random(seed)
    deck: list[int] = []
    out: list[Rendering] = []
    done = 0
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        for path in chorale_paths(seed):
            if done >= count:
                break
            renders = []
            try:
                score = corpus.parse(path)
                key = score.analyze("key")
                if key.mode not in ("major", "minor"):
                    continue
                tonic = key.tonic.pitchClass
                score.write("midi", fp=str(tmp / "written.mid"))
                written = mido.MidiFile(tmp / "written.mid")
                parts = sum(any(m.type == "note_on" for m in tr) for tr in written.tracks)
                keys = []
                for target in _deal(deck, transpositions, rng):
                    t = (target - tonic + 5) % 12 - 5  # -5..+6
                    keys.append((t, [rng.choice(MELODIC_PROGRAMS) for _ in range(parts)]))
                in_keys(written, keys).save(tmp / "keys.mid")
                # A few corpus files make fluidsynth render without end; a normal one takes a second.
                render_midi(tmp / "keys.mid", tmp / "keys.wav", timeout=60.0)
                audio = io.read(tmp / "keys.wav", SAMPLE_RATE, mono=True)[0]
                length = int(written.length * SAMPLE_RATE)
                if length < min_seconds * SAMPLE_RATE or np.abs(audio).max() < 1e-3:
                    continue
                for i, (t, programs) in enumerate(keys):
                    label = key_class(tonic + t, key.mode)
                    clip = audio[i * length : (i + 1) * length]
                    renders.append(Rendering(Path(path).stem, t, label, programs, clip))
            except Exception:  # noqa: BLE001 - some corpus files do not parse or render; skip them
                continue
            out += renders
            done += 1
    return out


def passages(n_samples: int, *, span: int, count: int, hop: int) -> list[int]:
    """Start samples of ``count`` passages of ``span`` samples spread evenly over a rendering
    from 1 s on (multiples of ``hop``; none if the rendering is shorter than 1 s + ``span``)."""
    last = n_samples - span
    if last < SAMPLE_RATE:
        return []
    starts = np.linspace(SAMPLE_RATE, last, count) // hop * hop
    return sorted({int(s) for s in starts})
