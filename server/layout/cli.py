"""``earsight layout EAR``: the picture of a layout, its quality figures and the benchmark."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .cache import Layout, cache_path, get_layout, shipped_path
from .charges import activation_stats, charges_from_variance
from .graph import build_graph

if TYPE_CHECKING:
    from ..ears.base import Ear


def plot_layout(layout: Layout, path: Path, *, size: tuple[int, int] = (1600, 900)) -> Path:
    """Write a PNG of the layout: edges faint, neurons coloured by layer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    dpi = 100
    fig = plt.figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi, facecolor="black")
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_facecolor("black")
    p = layout.positions
    if layout.edges.shape[0]:
        shown = layout.edges[:: max(1, layout.edges.shape[0] // 40000)]
        ax.add_collection(LineCollection(p[shown], colors=(0.5, 0.6, 0.7, 0.08), linewidths=0.4))
    cmap = matplotlib.colormaps["viridis"]
    colours = cmap(layout.layer / max(1, len(layout.layer_names) - 1))
    ax.scatter(p[:, 0], p[:, 1], s=1.5 * layout.charges, c=colours, linewidths=0)
    for k, name in enumerate(layout.layer_names):
        centre = p[layout.layer == k].mean(axis=0)
        ax.text(centre[0], centre[1], name, color="white", fontsize=9, ha="center")
    # Fit the layout's extent into the picture's aspect, equal scale on both axes.
    half_w = 1.05 * max(float(np.abs(p[:, 0]).max()), float(np.abs(p[:, 1]).max()) * size[0] / size[1], 1e-3)
    half_h = half_w * size[1] / size[0]
    ax.set_xlim(-half_w, half_w)
    ax.set_ylim(-half_h, half_h)
    ax.axis("off")
    path = Path(path)
    fig.savefig(path, dpi=dpi, facecolor="black")
    plt.close(fig)
    return path


def mean_edge_length(positions: np.ndarray, edges: np.ndarray) -> float:
    """Mean length of the edges (m, 2) between ``positions`` (n, 2): low when the wiring is tidy."""
    d = positions[edges[:, 0]] - positions[edges[:, 1]]
    return float(np.sqrt((d * d).sum(axis=1)).mean())


def mean_random_pair_length(positions: np.ndarray, pairs: int = 20000, seed: int = 0) -> float:
    """Mean distance between ``pairs`` random pairs of ``positions`` (n, 2): the scale to compare to."""
    rng = np.random.default_rng(seed)
    i = rng.integers(0, positions.shape[0], pairs)
    j = rng.integers(0, positions.shape[0], pairs)
    d = positions[i] - positions[j]
    return float(np.sqrt((d * d).sum(axis=1)).mean())


def bench_layout(ear: Ear, *, seed: int = 0, networkx: bool = True, max_pairs: float = 2e9) -> dict[str, float | int]:
    """Time our layout and ``networkx.spring_layout`` on the same graph, in this run.

    Both are scored by the ratio of mean edge length to mean random-pair distance (lower
    is better: connected neurons together). networkx's layout costs n² per iteration (half an
    hour for CREPE's 19k neurons): beyond ``max_pairs`` (n² x 50 iterations) only a few of its
    50 iterations are timed and the time is scaled up; its edge ratio is then not reported.
    """
    from .multilevel import layout_graph  # numba: only for the benchmark

    layer, _, edges = build_graph(ear.layers, seed=seed)
    n = int(layer.shape[0])
    variance, _ = activation_stats(ear)
    charges = charges_from_variance(variance, layer)
    layout_graph(64, np.array([[i, i + 1] for i in range(63)]), seed=seed)  # compile numba outside the clock
    t0 = time.perf_counter()
    ours = layout_graph(n, edges, charges, seed=seed)
    t_ours = time.perf_counter() - t0
    result: dict[str, float | int] = {
        "nodes": n,
        "edges": int(edges.shape[0]),
        "ours_s": t_ours,
        "ours_edge_ratio": mean_edge_length(ours, edges) / mean_random_pair_length(ours),
    }
    if networkx:
        import networkx as nx

        graph = nx.Graph()
        graph.add_nodes_from(range(n))
        graph.add_edges_from(edges.tolist())
        iterations = 50 if n * n * 50 <= max_pairs else max(1, int(max_pairs / (n * n)))
        t0 = time.perf_counter()
        pos = nx.spring_layout(graph, seed=seed, iterations=iterations)
        result["networkx_s"] = (time.perf_counter() - t0) * 50 / iterations
        result["networkx_iterations_timed"] = iterations
        if iterations == 50:
            theirs = np.array([pos[i] for i in range(n)])
            result["networkx_edge_ratio"] = mean_edge_length(theirs, edges) / mean_random_pair_length(theirs)
        result["speedup"] = result["networkx_s"] / t_ours
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``earsight layout EAR``."""
    parser.add_argument("ear", help="ear name (see `earsight ears`)")
    parser.add_argument("--png", type=Path, default=None, help="where to write the picture (default: EAR-layout.png)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rebuild", action="store_true", help="ignore the cache")
    parser.add_argument("--bench", action="store_true", help="also time networkx.spring_layout on the same graph")
    parser.add_argument("--ship", action="store_true", help="also write the layout into models/ (for the package)")


def run(args: argparse.Namespace) -> int:
    """``earsight layout EAR``: build (or fetch) the layout, write its PNG; optionally benchmark."""
    from ..ears import registry

    ear = registry.load(args.ear)
    t0 = time.perf_counter()
    layout = get_layout(ear, progress=True, seed=args.seed, rebuild=args.rebuild)
    elapsed = time.perf_counter() - t0
    png = plot_layout(layout, args.png or Path(f"{ear.name}-layout.png"))
    print(f"{ear.name}: {layout.n} neurons, {layout.edges.shape[0]} edges in {elapsed:.2f} s -> {png}")
    print(f"cache: {cache_path(ear, layout.key)}")
    if args.ship:
        layout.save(shipped_path(ear))
        print(f"shipped: {shipped_path(ear)}")
    if args.bench:
        for k, v in bench_layout(ear, seed=args.seed).items():
            print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")
    return 0
