"""One registry for all ears: a name, a loader (imported lazily: torch models are heavy) and a line of help."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from ..errors import NotFound
from ..paths import cache_dir, models_dir
from .base import Ear

log = logging.getLogger(__name__)


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


def trained() -> dict[str, Path]:
    """Ears trained by ``earsight train --out NAME``: CPC weights in models/ or the cache's models/."""
    from safetensors import SafetensorError, safe_open

    found: dict[str, Path] = {}
    for folder in (models_dir(), cache_dir() / "models"):
        for path in sorted(folder.glob("*.safetensors")) if folder.is_dir() else []:
            if path.stem in EARS or path.stem in found:
                continue
            try:
                with safe_open(str(path), framework="pt") as f:
                    if "config" in (f.metadata() or {}):  # what earsight.train writes
                        found[path.stem] = path
            except (SafetensorError, OSError) as exc:  # a broken file is not an ear; say so, go on
                log.warning("ignoring %s: %s", path, exc)
    return found


def names() -> list[str]:
    return [*EARS, *trained()]


def load(name: str) -> Ear:
    """Build the ear called ``name``; raises NotFound for a name the registry lacks."""
    if name not in EARS:
        path = trained().get(name)
        if path is None:
            raise NotFound(f"unknown ear {name!r} (ears: {', '.join(names())})")
        from .cpc import load as load_cpc

        ear = load_cpc(path)
        ear.name = name
        return ear
    module, _, function = EARS[name].loader.partition(":")
    factory = cast(Callable[[], Ear], getattr(importlib.import_module(module), function))
    return factory()
