"""Where shaders and models live: found through the package, so a wheel works like the checkout."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def shaders_dir() -> Path:
    return Path(str(resources.files("earsight.shaders")))


def models_dir() -> Path:
    """The shipped ears (weights, cards, layouts)."""
    return Path(str(resources.files("earsight.models")))


def cache_dir() -> Path:
    """Writable place for derived files (converted weights, layouts of user ears)."""
    base = os.environ.get("EARSIGHT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "earsight"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path
