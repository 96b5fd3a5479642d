"""ImageNet's 1,000 class names, read from timm's wheel (its data files, without importing timm)."""

from __future__ import annotations

import functools
import importlib.util
import re
from pathlib import Path

from ..errors import EarsightError


def _info_dir() -> Path:
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        raise EarsightError("ImageNet's class names come from timm's wheel: pip install --no-deps timm (setup.sh does)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "_info"


@functools.cache
def names() -> tuple[str, ...]:
    """Class index -> its names, e.g. ``seashore, coast, seacoast, sea-coast`` (the network's order)."""
    info = _info_dir()
    try:
        synsets = (info / "imagenet_synsets.txt").read_text().split()
        lemmas = dict(line.split("\t", 1) for line in (info / "imagenet_synset_to_lemma.txt").read_text().splitlines()
                      if "\t" in line)
    except OSError as exc:
        raise EarsightError(f"cannot read ImageNet's class names in {info}: {exc}") from exc
    if len(synsets) != 1000:
        raise EarsightError(f"{info}/imagenet_synsets.txt lists {len(synsets)} classes, not 1000")
    return tuple(lemmas.get(s, s).strip() for s in synsets)


def short(index: int) -> str:
    """A class's first name: ``seashore``."""
    return names()[index].split(",")[0]


def words(index: int) -> set[str]:
    """The lower-case words of all a class's names: what a sidecar's words are matched against."""
    return set(re.findall(r"[a-z]+", names()[index].lower()))


@functools.cache
def index_of(name: str) -> int:
    """The class whose names include ``name`` exactly (case-insensitive): ``seashore`` -> 978."""
    key = name.strip().lower()
    for i, full in enumerate(names()):
        if key in (n.strip().lower() for n in full.split(",")):
            return i
    raise KeyError(name)
