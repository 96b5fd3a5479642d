"""The reproducible recipe for the audio our ears learn from (no audio is committed).

``earsight data build DIR`` writes 16 kHz mono FLAC files into ``DIR`` from three sources,
each optional, each seeded:

- ``scores/``: music21 corpus scores -> MIDI with a General MIDI program drawn per part ->
  fluidsynth with FluidR3_GM (Debian ``fluidsynth`` ``fluid-soundfont-gm``; ``music21`` from PyPI).
- ``drums/``: patterns sequenced from the recorded one-shots of Debian ``hydrogen-drumkits``.
- ``music/``: recorded game music from Debian packages (``nexuiz-music``, ``singularity-music``,
  ``wesnoth-1.16-music`` …), whichever are installed.

``DIR/manifest.json`` lists every file with its source and licence, and ``DIR/LICENSES.md``
sums the licences up for the model card. Render :func:`note_set` gives labelled notes for probes.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import io

SAMPLE_RATE = 16000
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")

# GM programs that sound like distinct instruments in FluidR3 (no drums, no effects);
# parts draw from these so a chorale is not always four pianos.
MELODIC_PROGRAMS = (
    0, 1, 4, 6, 11, 12, 13, 16, 19, 21, 22, 24, 25, 26, 32, 33, 35, 40, 41, 42, 43, 46,
    48, 52, 56, 57, 58, 60, 61, 64, 65, 66, 68, 69, 70, 71, 73, 74, 75, 79, 80, 81, 88, 89,
)  # fmt: skip

TWIN = "_twin"
"""The suffix of a score's twin: the same rendering transposed (``0003_bach_bwv10.7_twin.flac``)."""
TWIN_SHIFTS = (-6, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 6)
"""A twin's transpositions: every other pitch class (a tritone either way), never the same one."""


def twin_base(path: Path) -> Path:
    """The file a twin was transposed from (``path`` itself when it is no twin)."""
    return path.with_name(path.stem[: -len(TWIN)] + path.suffix) if path.stem.endswith(TWIN) else path


# Debian packages of recorded music: where the audio is and the licence their copyright file states.
MUSIC_PACKAGES: dict[str, tuple[str, str]] = {
    "nexuiz-music": ("/usr/share/games/nexuiz/data/music.pk3", "GPL-2+ (Alientrap, Nexuiz)"),
    "singularity-music": ("/usr/share/games/singularity/music", "CC-BY-SA-3.0 (Max McCracken)"),
    "wesnoth-1.16-music": (
        "/usr/share/games/wesnoth/1.16/data/core/music",
        "GPL-2+ (Wesnoth authors)",
    ),
    "hyperrogue-music": (
        "/usr/share/hyperrogue/music",
        "CC-BY-SA-3.0 (Shawn Parrotte, Lincoln Domina, Will Savino)",
    ),
    "hedgewars-data": ("/usr/share/games/hedgewars/Data/Music", "GPL-2 (the Hedgewars project)"),
    "colobot-common-sounds": ("/usr/share/games/colobot/music", "GPL-3+ (TerranovaTeam, Epsitec)"),
}


@dataclass
class Item:
    """One file of the built data set."""

    path: str
    source: str
    licence: str
    seconds: float
    detail: str = ""


def find_audio(paths: Iterable[str | Path]) -> list[Path]:
    """Audio files named directly or found (recursively) in folders, sorted for reproducibility."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(
                f for f in p.rglob("*") if f.suffix.lower() in io.SUFFIXES and f.is_file()
            )
        elif p.is_file():
            found.append(p)
        else:
            raise FileNotFoundError(f"no such audio file or folder: {p}")
    return found


def _write(path: Path, audio: np.ndarray) -> float:
    path.parent.mkdir(parents=True, exist_ok=True)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if peak > 0.99:  # renders and mixes can clip; FLAC is integer
        audio = audio * (0.99 / peak)
    io.write(path, audio, SAMPLE_RATE)
    return audio.shape[0] / SAMPLE_RATE


# --------------------------------------------------------------------------- MIDI + fluidsynth


def midi_file(
    notes: Sequence[tuple[int, int, float, float, int]], *, tempo_bpm: float = 120.0
) -> bytes:
    """A standard MIDI file (format 0) from ``(channel, program, start_s, dur_s, pitch)`` notes."""
    import mido

    tpq = 480
    ticks_per_s = tpq * tempo_bpm / 60.0
    events: list[tuple[int, int, mido.Message]] = []  # (tick, order, message); note-offs before note-ons
    programs: dict[int, int] = {}
    for ch, prog, start, dur, pitch in notes:
        on, off = int(round(start * ticks_per_s)), int(round((start + dur) * ticks_per_s))
        if programs.get(ch) != prog:
            programs[ch] = prog
            events.append((on, 0, mido.Message("program_change", channel=ch, program=prog)))
        events.append((on, 2, mido.Message("note_on", channel=ch, note=pitch, velocity=96)))
        events.append((off, 1, mido.Message("note_off", channel=ch, note=pitch, velocity=0)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo_bpm))])
    last = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - last))  # mido's times are deltas in ticks
        last = tick
    out = BytesIO()
    mido.MidiFile(type=0, ticks_per_beat=tpq, tracks=[track]).save(file=out)
    return out.getvalue()


def render_midi(
    midi: Path, wav: Path, *, soundfont: Path = SOUNDFONT, gain: float = 0.5, timeout: float = 120.0,
    reverb: bool = True, chorus: bool = True,
) -> None:
    """fluidsynth, faster than real time, straight to a 16 kHz wav file.

    The timeout guards against the odd MIDI file fluidsynth never finishes.
    """
    if shutil.which("fluidsynth") is None or not soundfont.exists():
        raise RuntimeError("needs Debian packages fluidsynth and fluid-soundfont-gm")
    subprocess.run(
        [
            "fluidsynth",
            "-ni",
            "-q",
            "-g",
            str(gain),
            "-R",
            "1" if reverb else "0",
            "-C",
            "1" if chorus else "0",
            "-r",
            str(SAMPLE_RATE),
            "-F",
            str(wav),
            str(soundfont),
            str(midi),
        ],
        check=True,
        capture_output=True,
        timeout=timeout,
    )


def note_set(
    programs: Sequence[int] = (0, 11, 19, 24, 40, 56, 68, 73),
    pitches: Sequence[int] = tuple(range(48, 84)),
    *,
    note_s: float = 0.8,
    gap_s: float = 0.4,
) -> tuple[np.ndarray, list[dict[str, int]]]:
    """Labelled single notes for probes: one rendering of every (program, pitch).

    Returns audio ``(samples,)`` at 16 kHz and one dict per note: ``program``, ``pitch``,
    ``pitch_class``, ``start``/``end`` in samples.
    """
    notes, labels = [], []
    t = 0.5
    for prog in programs:
        for pitch in pitches:
            notes.append((0, prog, t, note_s, pitch))
            labels.append(
                {
                    "program": prog,
                    "pitch": pitch,
                    "pitch_class": pitch % 12,
                    "start": int(t * SAMPLE_RATE),
                    "end": int((t + note_s) * SAMPLE_RATE),
                }
            )
            t += note_s + gap_s
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "notes.mid", Path(tmp) / "notes.wav"
        mid.write_bytes(midi_file(notes))
        render_midi(mid, wav)
        audio = io.read(wav, SAMPLE_RATE, mono=True)[0]
    return audio, labels


def build_scores(
    out: Path, *, count: int, seed: int, max_seconds: float = 90.0, max_quarters: float = 240.0,
    variations: int = 0, shard: tuple[int, int] = (0, 1), twins: bool = False,
) -> list[Item]:
    """Render ``count`` music21 corpus scores (seeded choice), one random GM program per part.

    ``variations``: renderings of each score beyond the one as written, each with its own
    programs, a transposition (-5..+6 semitones), a tempo (x0.8..1.25) and fluidsynth's reverb
    and chorus switched on or off at random. ``shard`` (I, N): only the I-th of N disjoint
    parts of the corpus (one per machine), ``count // N`` scores of it (one more for the first
    ``count % N``); the default is the whole recipe, rendered exactly as before.
    ``twins``: each rendering also gets a twin (:data:`TWIN`), transposed by 1-6 semitones up or
    down with the same programs, tempo and effects: the same music in another key, which training
    uses as the hardest negative (:meth:`earsight.train.clips.Clips.draw`). The other files are
    rendered exactly as without twins.
    """
    from music21 import corpus  # optional dependency (extra "train")

    index, shards = shard
    rng = random.Random(seed)
    paths = sorted(str(p) for p in corpus.getPaths())
    rng.shuffle(paths)
    paths = paths[index::shards]
    count = count // shards + (index < count % shards)
    items: list[Item] = []
    rendered = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            if rendered >= count:
                break
            try:
                score = corpus.parse(path)
                if hasattr(score, "scores"):  # an Opus (many tunes): take the first
                    score = score.scores[0]
                if score.highestTime > max_quarters:  # long works: render time, little variety
                    continue
                audio, chosen = _render(score, rng, Path(tmp), max_seconds)
            except Exception:  # noqa: BLE001 - the corpus has scores music21 cannot render; skip them
                continue
            if audio.shape[0] < 2 * SAMPLE_RATE or np.abs(audio).max() < 1e-3:
                continue
            rendered += 1
            takes = [(audio, f"programs {chosen}", score, chosen, True, True)]
            for take in range(1, variations + 1):
                vary = random.Random(f"{seed}:{path}:{take}")  # its own stream: the as-written ones stay the same
                t, tempo = vary.randint(-5, 6), vary.uniform(0.8, 1.25)
                reverb, chorus = vary.random() < 0.5, vary.random() < 0.5
                try:
                    varied = score.transpose(t).augmentOrDiminish(1 / tempo)
                    audio, chosen = _render(varied, vary, Path(tmp), max_seconds, reverb=reverb, chorus=chorus)
                except Exception:  # noqa: BLE001 - as above
                    continue
                takes.append((
                    audio, f"programs {chosen}; transposed {t:+d}; tempo x{tempo:.2f}; reverb {reverb}; chorus {chorus}",
                    varied, chosen, reverb, chorus,
                ))
            stem = Path(re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).relative_to(Path(path).parents[1]).as_posix())).stem
            files: list[tuple[np.ndarray, str, str]] = []
            for take, (audio, detail, played, chosen, reverb, chorus) in enumerate(takes):
                name = f"{stem}{f'_v{take}' if take else ''}"
                files.append((audio, name, detail))
                if not twins:
                    continue
                shift = random.Random(f"{seed}:{path}:{take}:twin").choice(TWIN_SHIFTS)
                try:
                    audio, _ = _render(
                        played.transpose(shift), rng, Path(tmp), max_seconds,
                        reverb=reverb, chorus=chorus, programs=chosen,
                    )
                except Exception:  # noqa: BLE001 - as above
                    continue
                files.append((audio, name + TWIN, f"{detail}; twin transposed {shift:+d}"))
            for audio, name, detail in files:
                if not name.endswith(TWIN):  # a twin shares its original's number (and split)
                    number = sum(not Path(i.path).stem.endswith(TWIN) for i in items)
                    prefix = f"{number:04d}" if shards == 1 else f"s{index}-{number:04d}"
                dest = out / "scores" / f"{prefix}_{name}.flac"
                items.append(
                    Item(
                        str(dest.relative_to(out)),
                        "music21 corpus + FluidR3_GM",
                        "music21 corpus (out of US copyright or licensed for use, some for non-commercial"
                        " use only: music21/corpus/license.txt); FluidR3_GM: MIT",
                        _write(dest, audio),
                        f"{Path(path).parent.name}/{Path(path).name}; {detail}",
                    )
                )
    return items


def _render(
    score: Any, rng: random.Random, tmp: Path, max_seconds: float, *, reverb: bool = True, chorus: bool = True,
    programs: Sequence[int] | None = None,
) -> tuple[np.ndarray, list[int]]:
    """A score with one program per part drawn by ``rng`` (or the ``programs`` given), at 16 kHz."""
    from music21 import instrument

    parts = list(score.parts) or [score]
    chosen = []
    for i, part in enumerate(parts):
        for old in list(part.recurse().getElementsByClass(instrument.Instrument)):
            if old.activeSite is not None:
                old.activeSite.remove(old)
        inst = instrument.Instrument()
        inst.midiProgram = rng.choice(MELODIC_PROGRAMS) if programs is None else programs[i]
        chosen.append(inst.midiProgram)
        part.insert(0, inst)
    mid = tmp / "score.mid"
    score.write("midi", fp=str(mid))
    wav = tmp / "score.wav"
    # A few corpus files make fluidsynth render without end; a normal one takes seconds.
    render_midi(mid, wav, timeout=30.0, reverb=reverb, chorus=chorus)
    return io.read(wav, SAMPLE_RATE, mono=True)[0][: int(max_seconds * SAMPLE_RATE)], chosen


# --------------------------------------------------------------------------- drums


def build_drums(
    out: Path, *, count: int, seed: int, seconds: float = 12.0, shard: tuple[int, int] = (0, 1)
) -> list[Item]:
    """``count`` drum patterns from Hydrogen kits (:func:`earsight.train.drums.grooves`).

    ``shard`` (I, N): only the patterns ``i % N == I`` of the same sequence are written.
    """
    from .drums import grooves

    items: list[Item] = []
    for g in grooves(count, seed, sample_rate=SAMPLE_RATE, seconds=seconds):
        if g.index % shard[1] != shard[0]:  # another machine's
            continue
        dest = out / "drums" / f"{g.index:04d}_{re.sub(r'[^A-Za-z0-9]+', '_', g.kit)}.flac"
        items.append(
            Item(
                str(dest.relative_to(out)),
                f"hydrogen-drumkits: {g.kit} ({g.author})",
                g.licence,
                _write(dest, g.audio),
                f"{g.bpm:.0f} bpm",
            )
        )
    return items


# --------------------------------------------------------------------------- recorded music


def build_music(
    out: Path, *, packages: Sequence[str], max_minutes: float, shard: tuple[int, int] = (0, 1)
) -> list[Item]:
    """Decode installed Debian music packages to 16 kHz FLAC (each package up to ``max_minutes``).

    ``shard`` (I, N): every N-th track from the I-th, up to ``max_minutes / N`` per package.
    """
    items: list[Item] = []
    for pkg in packages:
        where, licence = MUSIC_PACKAGES[pkg]
        src = Path(where)
        if not src.exists():
            continue
        budget = max_minutes * 60.0 / shard[1]
        with tempfile.TemporaryDirectory() as tmp:
            if src.suffix == ".pk3":  # nexuiz keeps its tracks in a zip
                with zipfile.ZipFile(src) as z:
                    members = sorted(n for n in z.namelist() if n.endswith(".ogg"))
                    z.extractall(tmp, members)
                files = [Path(tmp) / m for m in members]
            else:
                files = find_audio([src])
            for f in files[shard[0] :: shard[1]]:
                if budget <= 0:
                    break
                audio = io.read(f, SAMPLE_RATE, mono=True)[0][: int(budget * SAMPLE_RATE)]
                if audio.shape[0] < 2 * SAMPLE_RATE:
                    continue
                dest = out / "music" / pkg / (re.sub(r"[^A-Za-z0-9_.-]+", "_", f.stem) + ".flac")
                secs = _write(dest, audio)
                budget -= secs
                items.append(
                    Item(str(dest.relative_to(out)), f"Debian {pkg}", licence, secs, f.name)
                )
    return items


def build(
    out: str | Path,
    *,
    scores: int = 200,
    drums: int = 100,
    music: Sequence[str] = tuple(MUSIC_PACKAGES),
    music_minutes: float = 40.0,
    seed: int = 0,
    variations: int = 0,
    shard: tuple[int, int] = (0, 1),
    twins: bool = False,
) -> list[Item]:
    """Build the training set into ``out`` and write its manifest and licence summary.

    ``shard`` (I, N) builds the I-th of N disjoint parts, one per machine (see each builder).
    """
    if not 0 <= shard[0] < shard[1]:
        raise ValueError(f"shard {shard[0]}/{shard[1]}: the first number counts from 0 to the second's predecessor")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    items = (
        build_scores(root, count=scores, seed=seed, variations=variations, shard=shard, twins=twins) if scores else []
    )
    items += build_drums(root, count=drums, seed=seed, shard=shard) if drums else []
    items += build_music(root, packages=music, max_minutes=music_minutes, shard=shard)
    (root / "manifest.json").write_text(json.dumps([asdict(i) for i in items], indent=1))
    totals: dict[tuple[str, str], float] = {}
    for it in items:
        key = (it.source.split(":")[0], it.licence)
        totals[key] = totals.get(key, 0.0) + it.seconds
    lines = ["| source | licence | minutes |", "|---|---|---|"]
    lines += [f"| {s} | {lic} | {sec / 60:.1f} |" for (s, lic), sec in sorted(totals.items())]
    (root / "LICENSES.md").write_text("\n".join(lines) + "\n")
    return items


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``earsight data build DIR``."""
    parser.add_argument("action", choices=["build"], help="build: render and collect the audio")
    parser.add_argument("dir", help="folder to write the audio, manifest.json and LICENSES.md into")
    parser.add_argument(
        "--scores", type=int, default=200, help="music21 corpus scores to render (0: none)"
    )
    parser.add_argument(
        "--drums", type=int, default=100, help="drum patterns from hydrogen-drumkits (0: none)"
    )
    parser.add_argument(
        "--music",
        nargs="*",
        default=list(MUSIC_PACKAGES),
        choices=sorted(MUSIC_PACKAGES),
        help="installed Debian music packages to include",
    )
    parser.add_argument(
        "--music-minutes", type=float, default=40.0, help="at most this much per package"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--variations", type=int, default=0,
        help="renderings of each score beyond the written one (other programs, key, tempo, reverb, chorus)",
    )
    parser.add_argument(
        "--no-twins", dest="twins", action="store_false",
        help="do not render each score's twin (the same music 1-6 semitones away, which training's --twins uses)",
    )
    parser.add_argument(
        "--shard", type=_shard, default=(0, 1), metavar="I/N",
        help="build only the I-th of N disjoint parts (I from 0): one per machine of a torchrun",
    )


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected I/N, e.g. 0/2") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"{text!r}: I counts from 0 to N - 1")
    return i, n


def run(args: argparse.Namespace) -> int:
    items = build(
        args.dir,
        scores=args.scores,
        drums=args.drums,
        music=args.music,
        music_minutes=args.music_minutes,
        seed=args.seed,
        variations=args.variations,
        shard=args.shard,
        twins=args.twins,
    )
    minutes = sum(i.seconds for i in items) / 60
    print(
        f"{len(items)} files, {minutes:.1f} min of audio in {args.dir} (see manifest.json, LICENSES.md)"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="earsight-data", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
