"""Training our own ear (CPC) and the recipe for its audio.

- :mod:`.data`: the reproducible recipe for the training audio (``earsight data build DIR``):
  scores rendered through fluidsynth (as written, and varied), drum patterns (:mod:`.drums`),
  recorded music; shards for several machines; labelled notes for probes.
- :mod:`.clips`: the split by file (and a source held out whole) and the random clips a step draws.
- :mod:`.objective`: InfoNCE over the horizons (each beyond the encoder's reach), and its held-out evaluation.
- :mod:`.probes`: linear probes with known answers: pitch class and instrument of single notes, and
  the key of a passage (:mod:`.keyprobe`: chorales rendered in dealt keys).
- :mod:`.report`: the run's figures (JSON) and curves (PNG).
- :mod:`.loop`: the training loop (one process or DDP under torchrun) and ``earsight train``.

``python -m earsight.train`` and ``torchrun -m earsight.train`` run :func:`.loop.main`.
The loop's names are loaded on first use, so ``earsight data`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clips import split_files
    from .config import TrainConfig
    from .loop import add_arguments, main, run, train

_LAZY = {
    "TrainConfig": ".config",
    "split_files": ".clips",
    "train": ".loop",
    "add_arguments": ".loop",
    "run": ".loop",
    "main": ".loop",
}
__all__ = ["TrainConfig", "add_arguments", "main", "run", "split_files", "train"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value
