"""One registry for all ears: a name, a loader (imported lazily: torch models are heavy) and a line of help."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from ..errors import NotFound
from .base import Ear


@dataclass(frozen=True)
class Entry:
    name: str
    loader: str
    """``module:function`` returning a ready :class:`Ear`."""
    doc: str


EARS: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry("crepe", "earsight.ears.crepe:tiny", "CREPE tiny: pitch, 360 bins of 20 cents, 100 frames/s"),
        Entry("crepe-full", "earsight.ears.crepe:full", "CREPE full: the large pitch network (slower)"),
        Entry("musicnn", "earsight.ears.musicnn:load", "musicnn MagnaTagATune: 50 tags (genres, instruments, moods)"),
        Entry("cpc", "earsight.ears.cpc:load", "earsight CPC: our own ear, trained without labels on music"),
    )
}

DEFAULT = "crepe"


def names() -> list[str]:
    return list(EARS)


def load(name: str) -> Ear:
    """Build the ear called ``name``; raises NotFound for a name the registry lacks."""
    if name not in EARS:
        raise NotFound(f"unknown ear {name!r} (ears: {', '.join(EARS)})")
    module, _, function = EARS[name].loader.partition(":")
    factory = cast(Callable[[], Ear], getattr(importlib.import_module(module), function))
    return factory()
