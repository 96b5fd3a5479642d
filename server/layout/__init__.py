"""Neural layout: every neuron of an ear placed in 2-D, so that connected neurons sit together.

The ear's layers become a graph (:mod:`.graph`). The graph is coarsened level by level
(heavy-edge matching) and laid out coarse to fine (:mod:`.multilevel`) by a force-directed
simulation (:mod:`.forces`, numba): springs on edges, Barnes–Hut repulsion through a
quadtree, a centring force, damped velocity integration. A neuron's charge comes from how
much it varies on a test signal (:mod:`.charges`), so busy neurons get room. Layouts are
cached per ear (:mod:`.cache`); :mod:`.cli` draws them and runs ``earsight layout``.

Importing this package loads neither torch nor numba: a layout found in the cache costs
neither. ``layout_graph`` (and numba with it) is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
    bench_layout,
    mean_edge_length,
    mean_random_pair_length,
    plot_layout,
    run,
)
from .graph import build_graph

if TYPE_CHECKING:
    from .multilevel import layout_graph

__all__ = [
    "LAYOUT_VERSION",
    "Layout",
    "activation_stats",
    "add_arguments",
    "bench_layout",
    "build_graph",
    "cache_path",
    "charges_from_variance",
    "compute_layout",
    "get_layout",
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
    if name == "layout_graph":
        return importlib.import_module(".multilevel", __name__).layout_graph
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
