"""A library of ambient sounds: audio files, each with a sidecar naming the ImageNet classes it evokes.

A folder holds ``rain.flac`` and ``rain.txt``; the sidecar has one entry a line, optionally
followed by a weight (``seashore 2``):

- a class name, any of the class's names, case-insensitive (``seashore``, ``sea-coast``);
- an index or a range of indices, ``#978`` or ``#7-24``;
- otherwise words, which name every class whose names hold all of them as whole words (``frogs``
  -> tree frog and tailed frog, not bullfrog; a plural's ``s`` may be dropped). An entry that names no class is an error that cites
  the file and line.

Blank lines and lines starting with ``//`` are skipped. Each class of an entry gets the entry's
weight; the sound stands for those weights, normalised to sum to 1. The default library is
synthesised into the cache on first use (:mod:`.synth`) and read like any other folder.
"""

from __future__ import annotations

import re
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import io
from ..errors import BadRequest, NotFound
from ..paths import cache_dir
from . import classes

LIBRARY_VERSION = 2
"""Bumped when the default sounds or their table change: the cache is synthesised again."""


@dataclass(frozen=True)
class Sound:
    name: str
    path: Path
    classes: dict[int, float]
    """Class index -> weight (summing to 1)."""


@dataclass(frozen=True)
class Library:
    folder: Path
    sounds: tuple[Sound, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sounds)

    def table(self) -> tuple[np.ndarray, np.ndarray]:
        """(expressible class indices (E,), sounds x classes distributions (S, E))."""
        idx = np.array(sorted({c for s in self.sounds for c in s.classes}), dtype=np.int64)
        col = {c: j for j, c in enumerate(idx)}
        q = np.zeros((len(self.sounds), idx.size))
        for i, s in enumerate(self.sounds):
            for c, w in s.classes.items():
                q[i, col[c]] = w
        return idx, q


def parse_entry(entry: str) -> list[int]:
    """The classes one sidecar entry names (empty: none)."""
    text = entry.strip()
    m = re.fullmatch(r"#(\d+)(?:\s*-\s*(\d+))?", text)
    if m:
        lo = int(m.group(1))
        hi = int(m.group(2) or lo)
        if not 0 <= lo <= hi < len(classes.names()):
            return []
        return list(range(lo, hi + 1))
    try:
        return [classes.index_of(text)]
    except KeyError:
        pass
    wanted = re.findall(r"[a-z]+", text.lower())
    if not wanted:
        return []
    for words in (wanted, [w[:-1] if w.endswith("s") and len(w) > 3 else w for w in wanted]):
        hits = [i for i in range(len(classes.names())) if set(words) <= classes.words(i)]
        if hits:
            return hits
    return []


def parse_sidecar(path: Path) -> dict[int, float]:
    weights: dict[int, float] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRequest(f"cannot read {path}: {exc}") from exc
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("//"):
            continue
        entry, weight = line, 1.0
        parts = line.rsplit(None, 1)
        if len(parts) == 2:
            try:
                weight = float(parts[1])
                entry = parts[0]
            except ValueError:
                pass
        if not (np.isfinite(weight) and weight > 0):
            raise BadRequest(f"{path}:{n}: the weight must be a positive number, got {parts[-1]}")
        hits = parse_entry(entry)
        if not hits:
            raise BadRequest(f"{path}:{n}: {entry!r} names no ImageNet class (use a class name, #index, or words of one)")
        for c in hits:
            weights[c] = weights.get(c, 0.0) + weight
    if not weights:
        raise BadRequest(f"{path} names no classes")
    total = sum(weights.values())
    return {c: w / total for c, w in sorted(weights.items())}


def load(folder: Path) -> Library:
    """Every audio file in ``folder`` with a sidecar; a folder with none is an error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotFound(f"no such folder: {folder}")
    sounds = []
    skipped = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in io.SUFFIXES:
            continue
        sidecar = path.with_suffix(".txt")
        if not sidecar.is_file():
            skipped.append(path.name)
            continue
        sounds.append(Sound(path.stem, path, parse_sidecar(sidecar)))
    if not sounds:
        extra = f" ({len(skipped)} without one: {', '.join(skipped[:3])})" if skipped else ""
        raise BadRequest(f"{folder}: no sounds with a sidecar .txt of classes{extra}")
    names = [s.name for s in sounds]
    if len(set(names)) != len(names):
        raise BadRequest(f"{folder}: two files share a name ({', '.join(sorted({n for n in names if names.count(n) > 1}))})")
    return Library(folder.resolve(), tuple(sounds))


_lock = threading.Lock()


def default_folder(progress: bool = False) -> Path:
    """The synthesised default library in the cache, written on first use (about 10 s)."""
    from . import synth

    folder = cache_dir() / f"sounds-v{LIBRARY_VERSION}"
    with _lock:
        if not folder.is_dir():
            # written aside and renamed: a process that stops half-way leaves no half a library
            tmp = folder.with_name(f"{folder.name}.{uuid.uuid4().hex}.tmp")
            synth.write_library(tmp, progress=progress)
            try:
                tmp.rename(folder)
            except OSError:  # another process was quicker: theirs is the same
                shutil.rmtree(tmp, ignore_errors=True)
    return folder


def default() -> Library:
    return load(default_folder())
