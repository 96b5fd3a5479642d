"""The layout of an ear, kept: the :class:`Layout` record (saved as .npz) and the per-ear cache.

Layouts are cached under :func:`earsight.paths.cache_dir` (``layouts/NAME-KEY.npz``); a copy
shipped in ``models/`` (``NAME.layout.npz``) is used when its key matches. The key hashes the
ear's layer table, its declared :meth:`~earsight.ears.base.Ear.fingerprint`, the seed and
:data:`LAYOUT_VERSION`, so a changed ear or algorithm never meets a stale layout.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import paths
from .blocks import connectivity
from .charges import activation_stats, charges_from_variance

if TYPE_CHECKING:
    from ..ears.base import Ear

log = logging.getLogger(__name__)

LAYOUT_VERSION = 4
"""Bump when the graph or the simulation changes: old cached layouts are then rebuilt.

2: the full connectivity (every input channel of a conv's window, dense all-to-all), laid out
by group (:mod:`.grouped`), every neuron on a pixel of its own at 1280x720.
3: springs pull as hard as a neuron's charge pushes (no busy neuron flung off its group).
4: every neuron on a pixel of its own in the picture's fit that fills the frame (``screen.fit``)."""

DRAWN_EDGES = 200_000
"""Edges kept in a layout for drawing (a uniform sample of all of them): the renderer draws at most this many."""


@dataclass(frozen=True)
class Layout:
    """Where every neuron of an ear sits.

    ``n`` neurons, ``m`` edges, ``k`` layers. Neurons are ordered layer by layer, and within a
    layer in C order of its shape, so ``unit[i]`` indexes ``frame.reshape(-1)`` of layer
    ``layer_names[layer[i]]``.
    """

    positions: np.ndarray
    """(n, 2) float32 in [-1, 1]; the long axis is x."""
    layer: np.ndarray
    """(n,) int32 layer index of each neuron."""
    unit: np.ndarray
    """(n,) int32 flat unit index of each neuron within its layer."""
    edges: np.ndarray
    """(m, 2) int32 neuron pairs (i < j): every connection, or a uniform sample of :data:`DRAWN_EDGES` of them."""
    layer_names: tuple[str, ...]
    """(k,) names, in the ear's order."""
    charges: np.ndarray
    """(n,) float32 repulsion charge of each neuron (from its activation variance)."""
    layer_range: np.ndarray
    """(k, 2) float32 low/high activation (1st/99th percentile) of each layer on the test signal."""
    key: str = ""
    """:func:`layout_key` of the ear and seed it was built for."""

    @property
    def n(self) -> int:
        return int(self.positions.shape[0])

    def offsets(self) -> np.ndarray:
        """(k + 1,) index of each layer's first neuron; the last entry is ``n``."""
        counts = np.bincount(self.layer, minlength=len(self.layer_names))
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def index(self, layer: str, units: list[int] | np.ndarray) -> np.ndarray:
        """Neuron indices of ``units`` (flat unit indices) of ``layer``."""
        k = self.layer_names.index(layer)
        return (self.offsets()[k] + np.asarray(units, np.int64)).astype(np.int64)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        arrays = {f.name: getattr(self, f.name) for f in fields(self)}
        arrays["layer_names"] = np.array(self.layer_names)
        arrays["key"] = np.array(self.key)
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)  # atomic: a concurrent reader never sees half a file

    @classmethod
    def load(cls, path: Path) -> Layout:
        with np.load(path, allow_pickle=False) as z:
            return cls(
                positions=z["positions"],
                layer=z["layer"],
                unit=z["unit"],
                edges=z["edges"],
                layer_names=tuple(str(s) for s in z["layer_names"]),
                charges=z["charges"],
                layer_range=z["layer_range"],
                key=str(z["key"]),
            )


def layout_key(ear: Ear, seed: int = 0) -> str:
    """Hash of what a layout depends on: the layer table, the ear's fingerprint, the seed, the version."""
    table = [(layer.name, list(layer.shape), layer.unit, layer.kind, layer.kernel) for layer in ear.layers]
    blob = json.dumps(
        {"v": LAYOUT_VERSION, "ear": ear.name, "layers": table, "seed": seed, "fingerprint": ear.fingerprint()},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cache_path(ear: Ear, key: str) -> Path:
    return paths.cache_dir() / "layouts" / f"{ear.name}-{key}.npz"


def shipped_path(ear: Ear) -> Path:
    return paths.models_dir() / f"{ear.name}.layout.npz"


def compute_layout(ear: Ear, *, seed: int = 0, progress: bool = False) -> Layout:
    """Build the layout of ``ear`` from scratch (no cache)."""
    from .grouped import layout_blocks  # numba: imported only when a layout is really built

    blocks = connectivity(ear.layers)
    variance, ranges = activation_stats(ear)
    charges = charges_from_variance(variance, blocks.layer)
    positions = layout_blocks(blocks, charges, seed=seed, progress=progress)
    return Layout(
        positions=positions,
        layer=blocks.layer,
        unit=blocks.unit,
        edges=blocks.edges(limit=DRAWN_EDGES, seed=seed),
        layer_names=tuple(ear.layer_names),
        charges=charges,
        layer_range=ranges,
        key=layout_key(ear, seed),
    )


def get_layout(ear: Ear, progress: bool = True, *, seed: int = 0, rebuild: bool = False) -> Layout:
    """The layout of ``ear``: from the cache or the shipped copy when their key matches, else built and cached."""
    key = layout_key(ear, seed)
    cached = cache_path(ear, key)
    if not rebuild:
        for path in (cached, shipped_path(ear)):
            if path.is_file():
                try:
                    layout = Layout.load(path)
                except (OSError, ValueError, KeyError) as err:
                    log.warning("layout: ignoring unreadable %s (%s)", path, err)
                    continue
                if layout.key == key:
                    return layout
    layout = compute_layout(ear, seed=seed, progress=progress)
    layout.save(cached)
    return layout
