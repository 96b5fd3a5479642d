"""layout.multilevel: heavy-edge coarsening and the coarse-to-fine driver."""

from __future__ import annotations

import numpy as np

from earsight.ears.base import Ear
from earsight.layout.graph import build_graph
from earsight.layout.multilevel import coarsen, layout_graph


def grid(rows: int, cols: int) -> np.ndarray:
    """(m, 2) edges of a rows x cols grid graph."""
    u = np.arange(rows * cols).reshape(rows, cols)
    return np.concatenate([np.stack([u[:, :-1].ravel(), u[:, 1:].ravel()], 1), np.stack([u[:-1].ravel(), u[1:].ravel()], 1)])


def test_coarsening_halves_the_graph_and_keeps_size_charge_and_weight() -> None:
    rng = np.random.default_rng(0)
    edges = grid(12, 20)
    n = 240
    weights = rng.uniform(0.5, 2.0, edges.shape[0])
    size = np.ones(n)
    charge = rng.uniform(0.3, 3.0, n)
    parent, c_edges, c_weights, c_size, c_charge = coarsen(rng, edges, weights, size, charge)
    nc = c_size.shape[0]
    assert parent.shape == (n,) and parent.min() == 0 and parent.max() == nc - 1
    assert nc <= n // 2, "every cluster of a connected graph holds at least two nodes"
    assert np.isclose(c_size.sum(), n) and np.isclose(c_charge.sum(), charge.sum())
    assert np.all(c_edges[:, 0] < c_edges[:, 1])
    assert np.unique(c_edges[:, 0] * nc + c_edges[:, 1]).shape[0] == c_edges.shape[0]
    across = parent[edges[:, 0]] != parent[edges[:, 1]]
    assert np.isclose(c_weights.sum(), weights[across].sum())


def test_layout_is_deterministic_with_a_seed(musicnn: Ear) -> None:
    layer, _, edges = build_graph(musicnn.layers, seed=2)
    n = layer.shape[0]
    a = layout_graph(n, edges, seed=5)
    b = layout_graph(n, edges, seed=5)
    c = layout_graph(n, edges, seed=6)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_layout_is_centred_wide_and_within_the_unit_square() -> None:
    pos = layout_graph(30 * 40, grid(30, 40), seed=1)
    assert pos.shape == (1200, 2) and pos.dtype == np.float32
    assert np.isclose(np.abs(pos).max(), 1.0)
    assert np.allclose(pos.mean(axis=0), 0.0, atol=1e-5)
    spread = pos.var(axis=0)
    assert spread[0] >= spread[1], "the principal axis lies along x (screens are wide)"
