"""Neural layout: every neuron of an ear placed in 2-D, so that connected neurons sit together.

An ear's layers become their FULL connectivity (:mod:`.blocks`): every input channel in a
conv's window, dense layers all to all, kept as group pairs (all channels of one position
share their neighbours), never as an edge list. :mod:`.grouped` lays it out exactly: linear
springs over all edges through group centroids, Barnes–Hut repulsion (:mod:`.forces`,
numba), coarse to fine over chunks of groups, then every neuron on a pixel of its own at
1280x720 (:mod:`.screen`). :mod:`.quality` scores a layout on all edges. A neuron's charge
comes from how much it varies on a test signal (:mod:`.charges`), so busy neurons get room.
Layouts are cached per ear (:mod:`.cache`); :mod:`.cli` draws them, runs ``earsight layout``
and the benchmark. :mod:`.graph` and :mod:`.multilevel` lay out a general (sampled) graph.

Importing this package loads neither torch nor numba: a layout found in the cache costs
neither. ``layout_blocks``, ``layout_graph`` and ``block_quality`` (and numba with them) are
imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .blocks import Blocks, benchmark_layers, connectivity
from .cache import (
    LAYOUT_VERSION,
    Layout,
    cache_path,
    compute_layout,
    get_layout,
    layout_key,
    shipped_path,
)
from .charges import activation_stats, charges_from_variance, probe_signal
from .cli import (
    add_arguments,
    bench_graph,
    bench_layout,
    bench_layouts,
    mean_edge_length,
    mean_random_pair_length,
    plot_layout,
    run,
)
from .graph import build_graph
from .screen import distinct_pixel_fraction

if TYPE_CHECKING:
    from .grouped import layout_blocks
    from .multilevel import layout_graph
    from .quality import block_quality

_LAZY = {"layout_graph": ".multilevel", "layout_blocks": ".grouped", "block_quality": ".quality"}

__all__ = [
    "LAYOUT_VERSION",
    "Blocks",
    "Layout",
    "activation_stats",
    "add_arguments",
    "bench_graph",
    "bench_layout",
    "bench_layouts",
    "benchmark_layers",
    "block_quality",
    "build_graph",
    "cache_path",
    "charges_from_variance",
    "compute_layout",
    "connectivity",
    "distinct_pixel_fraction",
    "get_layout",
    "layout_blocks",
    "layout_graph",
    "layout_key",
    "mean_edge_length",
    "mean_random_pair_length",
    "plot_layout",
    "probe_signal",
    "run",
    "shipped_path",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
