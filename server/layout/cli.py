"""``earsight layout EAR``: the picture of a layout, its quality figures and the benchmark."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .blocks import Blocks, benchmark_layers, connectivity
from .cache import Layout, cache_path, get_layout, shipped_path
from .charges import activation_stats, charges_from_variance
from .screen import distinct_pixel_fraction

if TYPE_CHECKING:
    from ..ears.base import Ear, Layer


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
        # Full connectivity is dense: a few thousand faint edges show the wiring, not a fog over the neurons.
        shown = layout.edges[:: max(1, layout.edges.shape[0] // 8000)]
        ax.add_collection(LineCollection(p[shown], colors=(0.5, 0.6, 0.7, 0.05), linewidths=0.3))
    cmap = matplotlib.colormaps["viridis"]
    colours = cmap(layout.layer / max(1, len(layout.layer_names) - 1))
    ax.scatter(p[:, 0], p[:, 1], s=1.5 * layout.charges, c=colours, linewidths=0)
    for k, name in enumerate(layout.layer_names):
        # Above the layer's topmost neuron: a ring's centroid is its hole, often another layer.
        top = p[layout.layer == k][np.argmax(p[layout.layer == k][:, 1])]
        ax.text(top[0], top[1], name, color="white", fontsize=9, ha="center", va="bottom")
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


def _networkx(blocks: Blocks, seed: int, max_pairs: float, max_edges: int) -> dict[str, float | int | str]:
    """networkx.spring_layout on the same full graph: all 50 iterations when n^2 x 50 <= ``max_pairs``,
    else as many as fit, timed and scaled up to 50 (its quality is then not reported); skipped
    beyond ``max_edges`` edges (a networkx graph costs ~300 bytes an edge)."""
    n, m = blocks.n, blocks.m
    if m > max_edges:
        return {"networkx": f"skipped: {m} edges > {max_edges} (networkx would hold them as dicts)"}
    import networkx as nx

    from .quality import block_quality  # numba

    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_edges_from(blocks.edges().tolist())
    iterations = 50 if n * n * 50 <= max_pairs else max(1, int(max_pairs / (n * n)))
    t0 = time.perf_counter()
    pos = nx.spring_layout(graph, seed=seed, iterations=iterations)
    out: dict[str, float | int | str] = {
        "networkx_s": (time.perf_counter() - t0) * 50 / iterations,
        "networkx_iterations_timed": iterations,
    }
    if iterations == 50:
        theirs = np.array([pos[i] for i in range(n)], np.float64)
        out["networkx_edge_ratio"] = block_quality(theirs, blocks)
        out["networkx_distinct_pixels"] = distinct_pixel_fraction(theirs.astype(np.float32))
    else:
        out["networkx"] = f"{iterations} of 50 iterations timed, time scaled up; unconverged: no quality"
    return out


def bench_graph(
    layers: Sequence[Layer], charges: np.ndarray | None = None, *, seed: int = 0, networkx: bool = True,
    max_pairs: float = 4e8, max_edges: int = 3_000_000,
) -> dict[str, float | int | str]:
    """Our layout of the full connectivity of ``layers`` beside networkx's on the same graph, in this run.

    quality ("edge_ratio") = mean length of ALL edges / mean random-pair distance (lower: connected
    neurons together); "distinct_pixels": the fraction of neurons whose centre pixel at 1280x720
    (fitted as the renderer fits) no other neuron shares.
    """
    from .grouped import layout_blocks  # numba: only for the benchmark
    from .quality import block_quality

    blocks = connectivity(layers)
    layout_blocks(connectivity(layers[:2]), seed=seed)  # compile numba outside the clock
    t0 = time.perf_counter()
    ours = layout_blocks(blocks, charges, seed=seed)
    t_ours = time.perf_counter() - t0
    result: dict[str, float | int | str] = {
        "nodes": blocks.n,
        "edges": blocks.m,
        "ours_s": t_ours,
        "ours_edge_ratio": block_quality(ours, blocks),
        "ours_distinct_pixels": distinct_pixel_fraction(ours),
    }
    if networkx:
        result.update(_networkx(blocks, seed, max_pairs, max_edges))
        if isinstance(result.get("networkx_s"), float):
            result["speedup"] = float(result["networkx_s"]) / t_ours
    return result


def bench_layout(ear: Ear, *, seed: int = 0, networkx: bool = True, max_pairs: float = 4e8,
                 max_edges: int = 3_000_000) -> dict[str, float | int | str]:
    """:func:`bench_graph` on ``ear``'s layers, with the charges its shipped layout uses."""
    blocks = connectivity(ear.layers)
    variance, _ = activation_stats(ear)
    charges = charges_from_variance(variance, blocks.layer)
    return bench_graph(ear.layers, charges, seed=seed, networkx=networkx, max_pairs=max_pairs, max_edges=max_edges)


def bench_layouts(ears: Sequence[str], *, seed: int = 0) -> dict[str, dict[str, float | int | str]]:
    """``earsight bench --only layout``: the issue's benchmark net (networkx skipped: 13.9 M edges; the
    issue measured 2,158 s and quality 0.275 for it), then every ear that loads."""
    from ..ears import registry

    out = {"benchmark net (CPC encoder shape)": bench_graph(benchmark_layers(), seed=seed)}
    out["benchmark net (CPC encoder shape)"]["networkx (the issue's measurement)"] = "2,158 s, edge ratio 0.275"
    for name in ears:
        try:
            ear = registry.load(name)
        except Exception as exc:  # an ear that cannot load here is reported, not fatal to the bench
            out[name] = {"skipped": f"cannot load ({type(exc).__name__}: {exc})"}
            continue
        out[name] = bench_layout(ear, seed=seed)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``earsight layout EAR``."""
    parser.add_argument("ear", help="ear name (see `earsight ears`)")
    parser.add_argument("--png", type=Path, default=None, help="where to write the picture (default: EAR-layout.png)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rebuild", action="store_true", help="ignore the cache")
    parser.add_argument("--bench", action="store_true", help="also time networkx.spring_layout on the same graph")
    parser.add_argument("--ship", action="store_true", help="also write the layout into models/ (for the package)")
    parser.add_argument("--networkx-whole", action="store_true",
                        help="with --bench: run networkx's 50 iterations on any graph, however big "
                             "(crepe's 8.3 M edges: ~14 min and 3.5 GB here)")


def run(args: argparse.Namespace) -> int:
    """``earsight layout EAR``: build (or fetch) the layout, write its PNG; optionally benchmark."""
    from ..ears import registry

    ear = registry.load(args.ear)
    t0 = time.perf_counter()
    layout = get_layout(ear, progress=True, seed=args.seed, rebuild=args.rebuild)
    elapsed = time.perf_counter() - t0
    png = plot_layout(layout, args.png or Path(f"{ear.name}-layout.png"))
    print(f"{ear.name}: {layout.n} neurons in {elapsed:.2f} s ({layout.edges.shape[0]} edges kept for drawing) -> {png}")
    print(f"cache: {cache_path(ear, layout.key)}")
    if args.ship:
        layout.save(shipped_path(ear))
        print(f"shipped: {shipped_path(ear)}")
    if args.bench:
        whole = args.networkx_whole
        figures = bench_layout(ear, seed=args.seed, max_pairs=float("inf") if whole else 4e8,
                               max_edges=1 << 62 if whole else 3_000_000)
        for k, v in figures.items():
            print(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}")
    return 0
