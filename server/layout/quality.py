"""How good a layout is: mean edge length over ALL edges of the blocks, against random pairs.

quality = mean edge length / mean random-pair distance: lower is better (connected neurons
together), and scale free. The edge mean is exact (every edge of every group pair, summed in
numba without listing them).
"""

from __future__ import annotations

import numba
import numpy as np

from .blocks import Blocks


@numba.njit(cache=True)
def _block_length_sum(pos: np.ndarray, start: np.ndarray, neurons: np.ndarray, pairs: np.ndarray) -> float:
    total = 0.0
    for p in range(pairs.shape[0]):
        g, h = pairs[p, 0], pairs[p, 1]
        for a in range(start[g], start[g + 1]):
            i = neurons[a]
            first = a + 1 if g == h else start[h]  # within a group: each pair once
            for b in range(first, start[h + 1]):
                j = neurons[b]
                dx = pos[i, 0] - pos[j, 0]
                dy = pos[i, 1] - pos[j, 1]
                total += np.sqrt(dx * dx + dy * dy)
    return total


def mean_block_edge_length(positions: np.ndarray, blocks: Blocks) -> float:
    """Mean length of every edge the blocks stand for."""
    start, neurons = blocks.members()
    m = blocks.m
    pos = np.asarray(positions, np.float64)
    return _block_length_sum(pos, start, neurons, blocks.pairs) / m if m else 0.0


def random_pair_length(positions: np.ndarray, pairs: int = 200_000, seed: int = 0) -> float:
    """Mean distance between ``pairs`` random pairs of distinct neurons."""
    rng = np.random.default_rng(seed)
    n = positions.shape[0]
    i = rng.integers(0, n, pairs)
    j = (i + rng.integers(1, max(n, 2), pairs)) % n
    d = positions[i].astype(np.float64) - positions[j]
    return float(np.sqrt((d * d).sum(axis=1)).mean())


def block_quality(positions: np.ndarray, blocks: Blocks) -> float:
    """Mean edge length (all edges) / mean random-pair distance: lower is better."""
    return mean_block_edge_length(positions, blocks) / random_pair_length(positions)
