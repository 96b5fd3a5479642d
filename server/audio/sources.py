"""What the server listens to: a :class:`Source`, checked at the boundary, and the sounds that ship with pyo."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import BadRequest, EarsightError, NotFound
from . import io

TEST_SIGNALS = {
    # name: (default parameter, what the parameter means, allowed range)
    "sine": (440.0, "frequency in Hz", (1.0, 20000.0)),
    "clicks": (2.0, "clicks per second", (0.1, 100.0)),
    "noise": (0.25, "amplitude", (0.0, 1.0)),
    "sweep": (4.0, "seconds per sweep from 50 Hz to 8 kHz", (0.1, 600.0)),
}
SOURCE_KINDS = ("demo", "device", "file", "test", "silence")


@dataclass(frozen=True)
class Source:
    """What the server listens to. ``name`` is a file path or a test signal; ``value`` its parameter."""

    kind: str = "demo"
    name: str = ""
    value: float = 0.0

    def describe(self) -> str:
        if self.kind == "file":
            return f"file {self.name}"
        if self.kind == "test":
            return f"test {self.name} {self.value:g}"
        return self.kind


def pyo_folder() -> Path:
    """Where pyo is installed, found without importing it (importing starts its audio machinery)."""
    spec = importlib.util.find_spec("pyo")
    if spec is None or not spec.submodule_search_locations:
        raise EarsightError("pyo is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def pyo_example_sound(name: str) -> Path:
    """One of the recordings in pyo's examples (drumloop.wav, flute.aif, ...)."""
    path = pyo_folder() / "examples" / "snds" / name
    if not path.is_file():
        raise NotFound(f"pyo has no example sound {name!r}")
    return path


def demo_files() -> list[Path]:
    """The sound files that ship with pyo, played one after the other as the demo input."""
    snds = pyo_folder() / "lib" / "snds"
    files = sorted(p for p in snds.iterdir() if p.suffix.lower() in io.SUFFIXES and "IR" not in p.name)
    if not files:
        raise EarsightError(f"no demo sounds in {snds}")
    return files


def validate_source(source: Source) -> Source:
    """Check a source at the boundary, so a bad one never reaches the audio process."""
    if source.kind not in SOURCE_KINDS:
        raise BadRequest(f"unknown input kind {source.kind!r} (kinds: {', '.join(SOURCE_KINDS)})")
    if source.kind == "file":
        path = Path(source.name).expanduser()
        io.info(path)  # NotFound, or BadRequest "cannot read ... as audio"
        return Source("file", str(path.resolve()))
    if source.kind == "test":
        if source.name not in TEST_SIGNALS:
            raise BadRequest(f"unknown test signal {source.name!r} (signals: {', '.join(TEST_SIGNALS)})")
        default, what, (lo, hi) = TEST_SIGNALS[source.name]
        value = source.value or default
        if not (np.isfinite(value) and lo <= value <= hi):
            raise BadRequest(f"test {source.name}: {what} must be in [{lo:g}, {hi:g}], got {value:g}")
        return Source("test", source.name, float(value))
    return Source(source.kind)
