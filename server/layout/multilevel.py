"""Multilevel layout: coarsen the graph by heavy-edge matching, lay it out coarse to fine.

Each level is settled by the force simulation of :mod:`.forces`, starting from its parent
level's positions, so the big graph only needs a few iterations near its answer.
"""

from __future__ import annotations

import numba
import numpy as np
from tqdm import tqdm

from .forces import simulate
from .graph import csr


@numba.njit(cache=True)
def _match(
    indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, size: np.ndarray, order: np.ndarray
) -> np.ndarray:
    """Heavy-edge matching, then aggregation: (n,) parent index of each node one level coarser.

    A node pairs with the unmatched neighbour of heaviest edge per combined size, so clusters
    stay balanced and strongly tied neurons merge first. Nodes left without a partner (the
    leaves of a star: a dense layer's many inputs) join their best neighbour's cluster, so
    every level at least halves the graph.
    """
    n = indptr.shape[0] - 1
    parent = -np.ones(n, np.int64)
    csize = np.zeros(n)
    count = 0
    for u in order:
        if parent[u] >= 0:
            continue
        best = -1
        best_score = -1.0
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            if parent[v] >= 0 or v == u:
                continue
            score = weights[e] / (size[u] + size[v])
            if score > best_score:
                best_score = score
                best = v
        if best >= 0:
            parent[u] = count
            parent[best] = count
            csize[count] = size[u] + size[best]
            count += 1
    for u in order:
        if parent[u] >= 0:
            continue
        best = -1
        best_score = -1.0
        for e in range(indptr[u], indptr[u + 1]):
            v = indices[e]
            if parent[v] < 0:
                continue
            score = weights[e] / (size[u] + csize[parent[v]])
            if score > best_score:
                best_score = score
                best = parent[v]
        if best < 0:
            best = count
            count += 1
        parent[u] = best
        csize[best] += size[u]
    return parent


def coarsen(
    rng: np.random.Generator, edges: np.ndarray, weights: np.ndarray, size: np.ndarray, charge: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One level coarser: (parent (n,), edges (m', 2), weights (m',), size (n',), charge (n',))."""
    n = size.shape[0]
    indptr, indices, w = csr(n, edges, weights)
    parent = _match(indptr, indices, w, size.astype(np.float64), rng.permutation(n))
    nc = int(parent.max()) + 1
    c_size = np.bincount(parent, weights=size, minlength=nc)
    c_charge = np.bincount(parent, weights=charge, minlength=nc)
    a, b = parent[edges[:, 0]], parent[edges[:, 1]]
    keep = a != b
    lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    code, inverse = np.unique(lo * nc + hi, return_inverse=True)
    c_weights = np.bincount(inverse, weights=weights[keep], minlength=code.shape[0])
    c_edges = np.stack([code // nc, code % nc], axis=1)
    return parent, c_edges, c_weights, c_size, c_charge


def layout_graph(
    n: int,
    edges: np.ndarray,
    charges: np.ndarray | None = None,
    *,
    seed: int = 0,
    progress: bool = False,
    min_nodes: int = 48,
) -> np.ndarray:
    """Lay out a graph of ``n`` nodes with ``edges`` (m, 2): (n, 2) float32 positions in [-1, 1].

    Coarsen until ``min_nodes`` remain (or matching stops shrinking the graph), lay out the
    coarsest level from random positions, then at each finer level start every node at its
    parent's place (with a little jitter) and settle again.
    """
    rng = np.random.default_rng(seed)
    charge = np.ones(n) if charges is None else np.asarray(charges, np.float64)
    weights = np.ones(edges.shape[0])
    size = np.ones(n)
    levels = [(edges.astype(np.int64), weights, size, charge)]
    parents: list[np.ndarray] = []
    while levels[-1][2].shape[0] > min_nodes:
        e, w, s, q = levels[-1]
        if e.shape[0] == 0:
            break
        parent, ce, cw, cs, cq = coarsen(rng, e, w, s, q)
        if cs.shape[0] > 0.9 * s.shape[0]:
            break  # matching has stalled (e.g. a star): more levels would not help
        parents.append(parent)
        levels.append((ce, cw, cs, cq))

    bar = tqdm(total=len(levels), desc="layout", unit="level", disable=not progress)
    # Natural edge length: the finest level fills a unit-ish disc.
    fine_length = 1.0 / np.sqrt(n)
    pos = np.zeros((0, 2))
    for lvl in range(len(levels) - 1, -1, -1):
        e, w, s, q = levels[lvl]
        nl = s.shape[0]
        length = fine_length * np.sqrt(n / nl)
        if lvl == len(levels) - 1:
            pos = rng.uniform(-1, 1, (nl, 2)) * np.sqrt(nl) * length
        else:
            parent = parents[lvl]
            pos = pos[parent] + rng.normal(0, 0.3 * length, (nl, 2))
        # Fine levels start near their answer; fewer iterations keep big graphs fast.
        # Coarse levels are cheap and set the global shape; fine ones start near their answer.
        iterations = int(np.clip(2e5 / nl, 40, 250))
        done = simulate(pos, e, w, q, np.sqrt(s), length, max_iterations=iterations, theta=1.0 if nl > 8000 else 0.8)
        bar.set_postfix(nodes=nl, iterations=done)
        bar.update(1)
    bar.close()
    return normalise_axes(pos).astype(np.float32)


def normalise_axes(pos: np.ndarray) -> np.ndarray:
    """Centre, turn the main axis horizontal (screens are wide) and scale into [-1, 1]."""
    pos = pos - pos.mean(axis=0)
    if pos.shape[0] > 1:
        _, _, vt = np.linalg.svd(pos, full_matrices=False)
        pos = pos @ vt.T
    scale = float(np.abs(pos).max()) if pos.size else 1.0
    return pos / (scale if scale > 0 else 1.0)
