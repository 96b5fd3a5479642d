"""layout.graph: every neuron is a node; conv layers link locally, dense ones all over."""

from __future__ import annotations

import numpy as np

from earsight.ears.base import Ear, Layer
from earsight.layout.graph import build_graph, csr


def test_graph_has_every_neuron_and_local_conv_edges(crepe: Ear) -> None:
    layer, unit, edges = build_graph(crepe.layers)
    sizes = [spec.size for spec in crepe.layers]
    assert layer.shape[0] == sum(sizes) == unit.shape[0]
    assert np.array_equal(np.bincount(layer), sizes)
    assert np.all(edges[:, 0] < edges[:, 1])
    assert np.unique(edges[:, 0].astype(np.int64) * layer.shape[0] + edges[:, 1]).shape[0] == edges.shape[0]
    degree = np.bincount(edges.ravel(), minlength=layer.shape[0])
    assert degree.min() >= 1, "a neuron without edges would float away"
    # conv2 (16, 64) -> conv3 (16, 32): linked positions keep their place along frequency.
    k2, k3 = crepe.layer_names.index("conv2"), crepe.layer_names.index("conv3")
    a, b = layer[edges[:, 0]], layer[edges[:, 1]]
    between = edges[(a == k2) & (b == k3)]
    assert between.shape[0] > 0
    p2 = unit[between[:, 0]] % 64 / 64
    p3 = unit[between[:, 1]] % 32 / 32
    assert np.abs(p2 - p3).max() <= 3 / 64
    # pitch (dense) links reach all over conv6's positions.
    k6, kp = crepe.layer_names.index("conv6"), crepe.layer_names.index("pitch")
    dense = edges[(a == k6) & (b == kp)]
    assert len(np.unique(unit[dense[:, 0]] % 4)) == 4


def test_recurrent_layers_link_within_themselves_and_the_seed_decides() -> None:
    layers = [Layer("in", (4, 16)), Layer("rnn", (32,), kind="recurrent"), Layer("out", (5,), kind="dense")]
    layer, _, edges = build_graph(layers, seed=3)
    k = 1
    inside = edges[(layer[edges[:, 0]] == k) & (layer[edges[:, 1]] == k)]
    assert inside.shape[0] > 0
    again = build_graph(layers, seed=3)[2]
    other = build_graph(layers, seed=4)[2]
    assert np.array_equal(edges, again)
    assert not np.array_equal(edges, other)


def test_csr_lists_each_edge_from_both_ends() -> None:
    edges = np.array([[0, 1], [1, 2], [0, 3]])
    weights = np.array([1.0, 2.0, 3.0])
    indptr, indices, w = csr(5, edges, weights)
    assert indptr.tolist() == [0, 2, 4, 5, 6, 6]  # node 4 has no edges
    rows = [slice(indptr[u], indptr[u + 1]) for u in range(5)]
    neighbours = {u: sorted(zip(indices[r].tolist(), w[r].tolist(), strict=True)) for u, r in enumerate(rows)}
    assert neighbours == {0: [(1, 1.0), (3, 3.0)], 1: [(0, 1.0), (2, 2.0)], 2: [(1, 2.0)], 3: [(0, 3.0)], 4: []}
