"""layout.blocks: the full connectivity of a layer table, checked against hand-counted convs."""

from __future__ import annotations

import numpy as np

from earsight.ears.base import Layer
from earsight.layout.blocks import benchmark_layers, connectivity, window


def as_set(edges: np.ndarray) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in edges}


def test_a_conv_reads_every_input_channel_in_its_window() -> None:
    # in: 1 channel x 3 positions (neurons 0, 1, 2); out: 2 channels x 3 positions, neuron
    # 3 + 3 c + q. Kernel 3: position q reads q-1..q+1 of every input channel.
    blocks = connectivity([Layer("in", (1, 3)), Layer("out", (2, 3))], kernel=3)
    expected = {
        (0, 3), (1, 3), (0, 6), (1, 6),  # q = 0 reads 0, 1
        (0, 4), (1, 4), (2, 4), (0, 7), (1, 7), (2, 7),  # q = 1 reads 0, 1, 2
        (1, 5), (2, 5), (1, 8), (2, 8),  # q = 2 reads 1, 2
    }
    edges = blocks.edges()
    assert as_set(edges) == expected and edges.shape[0] == len(expected) == blocks.m
    assert np.all(edges[:, 0] < edges[:, 1])
    assert blocks.group.tolist() == [0, 1, 2, 3, 4, 5, 3, 4, 5], "a group is one position of one layer"


def test_windows_follow_the_stride_and_dense_layers_read_everything() -> None:
    # Stride 2 (8 -> 4 positions), kernel 3: centre 2q + 0.5, half-width (3 - 1 + 2 - 1) / 2.
    assert [list(window(q, 8, 4, kernel=3)) for q in range(4)] == [[0, 1, 2], [1, 2, 3, 4], [3, 4, 5, 6], [5, 6, 7]]
    assert list(window(5, 64, 64, kernel=5)) == [3, 4, 5, 6, 7]
    layers = [Layer("a", (2, 8)), Layer("b", (3, 4)), Layer("c", (5,), kind="dense")]
    blocks = connectivity(layers, kernel=3)
    a, b, c = 0, 16, 28  # first neuron of each layer
    expected = set()
    for ch_b in range(3):
        for q in range(4):
            for ch_a in range(2):
                expected |= {(a + ch_a * 8 + p, b + ch_b * 4 + q) for p in window(q, 8, 4, kernel=3)}
    expected |= {(b + u, c + v) for u in range(12) for v in range(5)}
    assert as_set(blocks.edges()) == expected
    assert blocks.m == (3 + 4 + 4 + 3) * 2 * 3 + 12 * 5


def test_a_recurrent_layer_links_every_pair_within_itself() -> None:
    blocks = connectivity([Layer("in", (3,), kind="dense"), Layer("rnn", (4,), kind="recurrent")])
    inside = {(i, j) for i in range(3, 7) for j in range(i + 1, 7)}
    across = {(i, j) for i in range(3) for j in range(3, 7)}
    assert as_set(blocks.edges()) == inside | across and blocks.m == 6 + 12


def test_a_sample_of_edges_is_a_subset_of_distinct_edges() -> None:
    blocks = connectivity([Layer("a", (4, 16)), Layer("b", (8, 16)), Layer("c", (6,), kind="recurrent")])
    every = as_set(blocks.edges())
    sample = blocks.edges(limit=300, seed=1)  # of 3,151 edges: drawn one by one
    few = connectivity([Layer("a", (2, 4)), Layer("b", (2, 4))])  # 56 edges: chosen among them
    assert as_set(few.edges(limit=30)) <= as_set(few.edges()) and few.edges(limit=30).shape == (30, 2)
    assert sample.shape == (300, 2) and as_set(sample) <= every and len(as_set(sample)) == 300
    assert np.array_equal(sample, blocks.edges(limit=300, seed=1))
    # Uniform over edges: the dense part holds 8 * 16 * 6 of them.
    dense = (sample[:, 1] >= 4 * 16 + 8 * 16).mean()
    share = 8 * 16 * 6 / blocks.m
    assert abs(dense - share) < 0.1


def test_the_benchmark_net_is_the_issues() -> None:
    blocks = connectivity(benchmark_layers())
    assert blocks.n == 28_864
    assert 13_800_000 < blocks.m < 14_000_000
    assert blocks.pairs.shape[0] < 2000, "13.9 M edges kept as a few group pairs"


def test_declared_kernels_hold_the_ears_real_windows() -> None:
    # The ears' layer tables declare what one position reads; the layout's centred windows must
    # hold every position the real layer reads (a superset by at most one).
    from earsight.ears import registry

    crepe = {layer.name: layer for layer in registry.load("crepe").layers}
    # CREPE conv2: 'same' conv of kernel 64 (31 before, 32 after) on 128 positions, then a max-pool
    # of 2: output q reads 2q - 31 .. 2q + 1 + 32.
    for q in range(64):
        real = set(range(max(0, 2 * q - 31), min(128, 2 * q + 34)))
        laid = set(window(q, 128, 64, declared=crepe["conv2"].kernel))
        assert real <= laid and len(laid - real) <= 1
    cpc = {layer.name: layer for layer in registry.load("cpc").layers}
    # The CPC encoder's conv2: kernel 3 along frequency, stride 2, padding 1, on 43 bins: q reads 2q - 1 .. 2q + 1.
    assert (cpc["conv1"].shape[1], cpc["conv2"].shape[1]) == (43, 22)
    for q in range(22):
        real = set(range(max(0, 2 * q - 1), min(43, 2 * q + 2)))
        laid = set(window(q, 43, 22, declared=cpc["conv2"].kernel))
        assert real <= laid and len(laid - real) <= 1
