"""Neural layout: every neuron of an ear placed in 2-D, so that connected neurons sit together.

The ear's layers become a graph (a neuron is one unit of a layer: a channel at a frequency
position, a tag, ...). The graph is coarsened level by level (heavy-edge matching) and laid
out coarse to fine by a force-directed simulation: springs on edges, Barnes–Hut repulsion
through a quadtree, a centring force, damped velocity integration. A neuron's charge comes
from how much it varies on a test signal, so busy neurons get room.

Layouts are cached per ear under :func:`earsight.paths.cache_dir` (a shipped copy in
``models/`` is used when its key matches), keyed by the ear's layer table and weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from dataclasses import dataclass, fields
from pathlib import Path

import numba
import numpy as np
import torch
from tqdm import tqdm

from . import paths
from .ears.base import Ear, Layer

log = logging.getLogger(__name__)

LAYOUT_VERSION = 1
"""Bump when the graph or the simulation changes: old cached layouts are then rebuilt."""


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
    """(m, 2) int32 neuron pairs (i < j), the subsampled connections the layout used."""
    layer_names: tuple[str, ...]
    """(k,) names, in the ear's order."""
    charges: np.ndarray
    """(n,) float32 repulsion charge of each neuron (from its activation variance)."""
    layer_range: np.ndarray
    """(k, 2) float32 low/high activation (1st/99th percentile) of each layer on the test signal."""
    key: str = ""
    """Hash of the ear's layer table, weights and the layout version."""

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


# ---------------------------------------------------------------------------------------------
# The graph


def _rows_positions(layer: Layer) -> tuple[int, int]:
    """A layer seen as (rows, positions): locality lives along the last axis of 2-D+ layers."""
    if len(layer.shape) >= 2:
        return int(np.prod(layer.shape[:-1])), int(layer.shape[-1])
    return int(layer.shape[0]), 1


def _link(
    rng: np.random.Generator, src: Layer, dst: Layer, per_neuron: int, local: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``per_neuron`` connections from every neuron of ``dst`` into ``src``.

    Returns flat unit indices (src_units, dst_units), each (size(dst) * per_neuron,).
    Local links keep the relative position along the last axis (a conv's receptive field);
    the channel is drawn at random, since a conv connects every input channel.
    """
    rs, ps = _rows_positions(src)
    rd, pd = _rows_positions(dst)
    n = rd * pd
    dst_units = np.repeat(np.arange(n), per_neuron)
    rows = rng.integers(0, rs, dst_units.shape[0])
    if local and ps > 1 and pd > 1:
        centre = ((dst_units % pd) + 0.5) * ps / pd - 0.5
        radius = max(1.0, ps / pd)
        pos = np.rint(centre + rng.uniform(-radius, radius, dst_units.shape[0]))
        pos = np.clip(pos, 0, ps - 1).astype(np.int64)
    else:
        pos = rng.integers(0, ps, dst_units.shape[0])
    return rows * ps + pos, dst_units


def build_graph(
    layers: tuple[Layer, ...] | list[Layer], *, per_neuron: int = 2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The neuron graph of a layer table.

    Returns (layer (n,) int32, unit (n,) int32, edges (m, 2) int32 with i < j, unique).
    Each neuron links to ``per_neuron`` neurons of the layer before and of the layer after
    (so no neuron is left alone however different the layers' sizes); conv layers link
    locally along the last axis and chain neighbouring positions of a channel; dense layers
    link at random (all-to-all, subsampled); recurrent layers also link within themselves.
    """
    rng = np.random.default_rng(seed)
    sizes = [layer.size for layer in layers]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    layer_of = np.repeat(np.arange(len(layers), dtype=np.int32), sizes)
    unit_of = np.concatenate([np.arange(s, dtype=np.int32) for s in sizes]) if sizes else np.zeros(0, np.int32)
    a_list: list[np.ndarray] = []
    b_list: list[np.ndarray] = []

    def add(k_src: int, src_units: np.ndarray, k_dst: int, dst_units: np.ndarray) -> None:
        a_list.append(offsets[k_src] + src_units)
        b_list.append(offsets[k_dst] + dst_units)

    for k, layer in enumerate(layers):
        rows, pos = _rows_positions(layer)
        if layer.kind == "conv" and pos > 1:
            # A channel is a filter swept along the axis: chain its positions.
            u = np.arange(rows * pos).reshape(rows, pos)
            add(k, u[:, :-1].ravel(), k, u[:, 1:].ravel())
        if layer.kind == "recurrent":
            s, d = _link(rng, layer, layer, per_neuron, local=False)
            add(k, s, k, d)
        if k == 0:
            continue
        prev = layers[k - 1]
        local = layer.kind == "conv"
        s, d = _link(rng, prev, layer, per_neuron, local)  # every neuron here has inputs
        add(k - 1, s, k, d)
        d2, s2 = _link(rng, layer, prev, per_neuron, local)  # every neuron before has outputs
        add(k - 1, s2, k, d2)

    if not a_list:
        return layer_of, unit_of, np.zeros((0, 2), np.int32)
    a = np.concatenate(a_list)
    b = np.concatenate(b_list)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    n = int(offsets[-1])
    code = np.unique(lo[keep] * n + hi[keep])
    edges = np.stack([code // n, code % n], axis=1).astype(np.int32)
    return layer_of, unit_of, edges


def _csr(n: int, edges: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric CSR (indptr (n+1,), indices (2m,), weights (2m,)) of an undirected edge list."""
    a = np.concatenate([edges[:, 0], edges[:, 1]]).astype(np.int64)
    b = np.concatenate([edges[:, 1], edges[:, 0]]).astype(np.int64)
    w = np.concatenate([weights, weights]).astype(np.float64)
    order = np.argsort(a, kind="stable")
    indptr = np.zeros(n + 1, np.int64)
    np.add.at(indptr, a + 1, 1)
    return np.cumsum(indptr), b[order], w[order]


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


def _coarsen(
    rng: np.random.Generator, edges: np.ndarray, weights: np.ndarray, size: np.ndarray, charge: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One level coarser: (parent (n,), edges (m', 2), weights (m',), size (n',), charge (n',))."""
    n = size.shape[0]
    indptr, indices, w = _csr(n, edges, weights)
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


# ---------------------------------------------------------------------------------------------
# Barnes–Hut and the simulation (numba)


@numba.njit(cache=True)
def _build_quadtree(pos: np.ndarray, charge: np.ndarray) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int
]:
    """Quadtree over points: (child (cap,4), body (cap,), mass (cap,), com (cap,2), half (cap,), count).

    ``body`` is the point a leaf holds (-1 for internal or empty nodes); ``mass`` the summed
    charge and ``com`` the charge-weighted centre of everything below a node.
    """
    n = pos.shape[0]
    cap = 4 * n + 64
    child = -np.ones((cap, 4), np.int64)
    body = -np.ones(cap, np.int64)
    mass = np.zeros(cap)
    com = np.zeros((cap, 2))
    centre = np.zeros((cap, 2))
    half = np.zeros(cap)
    x0, x1 = pos[:, 0].min(), pos[:, 0].max()
    y0, y1 = pos[:, 1].min(), pos[:, 1].max()
    centre[0, 0] = 0.5 * (x0 + x1)
    centre[0, 1] = 0.5 * (y0 + y1)
    half[0] = 0.5 * max(x1 - x0, y1 - y0) + 1e-9
    count = 1
    for i in range(n):
        node = 0
        depth = 0
        while True:
            q = charge[i]
            m = mass[node]
            com[node, 0] = (com[node, 0] * m + pos[i, 0] * q) / (m + q)
            com[node, 1] = (com[node, 1] * m + pos[i, 1] * q) / (m + q)
            mass[node] = m + q
            leaf = child[node, 0] < 0 and child[node, 1] < 0 and child[node, 2] < 0 and child[node, 3] < 0
            if leaf and body[node] < 0 and m == 0.0:
                body[node] = i
                break
            if leaf and (depth > 48 or count + 8 >= cap):
                # Coincident points: the leaf keeps them as one lump (body -2) instead of splitting forever.
                body[node] = -2
                break
            if leaf:
                # Split: push the resident point one level down, then carry on with i.
                j = body[node]
                body[node] = -1
                if j >= 0:
                    qd = (1 if pos[j, 0] >= centre[node, 0] else 0) + (2 if pos[j, 1] >= centre[node, 1] else 0)
                    c = count
                    count += 1
                    child[node, qd] = c
                    h = 0.5 * half[node]
                    half[c] = h
                    centre[c, 0] = centre[node, 0] + (h if qd & 1 else -h)
                    centre[c, 1] = centre[node, 1] + (h if qd & 2 else -h)
                    body[c] = j
                    mass[c] = charge[j]
                    com[c, 0] = pos[j, 0]
                    com[c, 1] = pos[j, 1]
            qd = (1 if pos[i, 0] >= centre[node, 0] else 0) + (2 if pos[i, 1] >= centre[node, 1] else 0)
            c = child[node, qd]
            if c < 0:
                c = count
                count += 1
                child[node, qd] = c
                h = 0.5 * half[node]
                half[c] = h
                centre[c, 0] = centre[node, 0] + (h if qd & 1 else -h)
                centre[c, 1] = centre[node, 1] + (h if qd & 2 else -h)
            node = c
            depth += 1
    return child, body, mass, com, half, count


@numba.njit(cache=True)
def _morton_order(pos: np.ndarray) -> np.ndarray:
    """(n,) order of points along a Z-curve: neighbours in space become neighbours in memory."""
    n = pos.shape[0]
    x0, x1 = pos[:, 0].min(), pos[:, 0].max()
    y0, y1 = pos[:, 1].min(), pos[:, 1].max()
    sx = 65535.0 / max(x1 - x0, 1e-12)
    sy = 65535.0 / max(y1 - y0, 1e-12)
    code = np.empty(n, np.int64)
    for i in range(n):
        xi = np.int64((pos[i, 0] - x0) * sx)
        yi = np.int64((pos[i, 1] - y0) * sy)
        c = np.int64(0)
        for b in range(16):
            c |= ((xi >> b) & 1) << (2 * b)
            c |= ((yi >> b) & 1) << (2 * b + 1)
        code[i] = c
    return np.argsort(code)


@numba.njit(cache=True)
def _cell_force(
    s: int, spos: np.ndarray, child: np.ndarray, body: np.ndarray, mass: np.ndarray,
    com: np.ndarray, half: np.ndarray, theta2: float, stack: np.ndarray,
) -> tuple[float, float]:
    """Sum of Q * d / |d|² over the cells that point ``s`` sees (Barnes–Hut opening test)."""
    stack[0] = 0
    top = 1
    fx = 0.0
    fy = 0.0
    px = spos[s, 0]
    py = spos[s, 1]
    while top > 0:
        top -= 1
        node = stack[top]
        if mass[node] == 0.0 or body[node] == s:
            continue
        dx = px - com[node, 0]
        dy = py - com[node, 1]
        d2 = dx * dx + dy * dy
        leaf = child[node, 0] < 0 and child[node, 1] < 0 and child[node, 2] < 0 and child[node, 3] < 0
        size = 2.0 * half[node]
        if leaf or size * size < theta2 * d2:
            if d2 > 1e-18:
                f = mass[node] / d2
                fx += f * dx
                fy += f * dy
        else:
            for c in range(4):
                if child[node, c] >= 0 and top < stack.shape[0]:
                    stack[top] = child[node, c]
                    top += 1
    return fx, fy


@numba.njit(cache=True, parallel=True)
def _repulsion_parallel(
    pos: np.ndarray, charge: np.ndarray, strength: float, theta: float, out: np.ndarray
) -> None:
    order = _morton_order(pos)
    spos = pos[order]
    sq = charge[order]
    child, body, mass, com, half, _ = _build_quadtree(spos, sq)
    for s in numba.prange(pos.shape[0]):
        stack = np.empty(256, np.int64)
        fx, fy = _cell_force(s, spos, child, body, mass, com, half, theta * theta, stack)
        i = order[s]
        out[i, 0] += strength * sq[s] * fx
        out[i, 1] += strength * sq[s] * fy


@numba.njit(cache=True)
def _repulsion_serial(
    pos: np.ndarray, charge: np.ndarray, strength: float, theta: float, out: np.ndarray
) -> None:
    order = _morton_order(pos)
    spos = pos[order]
    sq = charge[order]
    child, body, mass, com, half, _ = _build_quadtree(spos, sq)
    stack = np.empty(256, np.int64)
    for s in range(pos.shape[0]):
        fx, fy = _cell_force(s, spos, child, body, mass, com, half, theta * theta, stack)
        i = order[s]
        out[i, 0] += strength * sq[s] * fx
        out[i, 1] += strength * sq[s] * fy


def _repulsion(pos: np.ndarray, charge: np.ndarray, strength: float, theta: float, out: np.ndarray) -> None:
    """Add Barnes–Hut repulsion to ``out`` (n, 2): strength * q_i * Q / d, away from each cell.

    2-D electrostatics (force falling as 1/d) spreads nodes evenly without the crowding at the
    rim that 1/d² gives. Bodies are visited in Z-order so that consecutive ones walk the same
    cells (cache-warm). Threads only pay off on big levels: waking them costs ~ms.
    """
    if pos.shape[0] > 4000:
        _repulsion_parallel(pos, charge, strength, theta, out)
    else:
        _repulsion_serial(pos, charge, strength, theta, out)


@numba.njit(cache=True)
def _springs(pos: np.ndarray, edges: np.ndarray, weights: np.ndarray, length: float, out: np.ndarray) -> None:
    """Add spring forces to ``out``: w * (d - length) along each edge (pulling when stretched)."""
    for e in range(edges.shape[0]):
        a = edges[e, 0]
        b = edges[e, 1]
        dx = pos[b, 0] - pos[a, 0]
        dy = pos[b, 1] - pos[a, 1]
        d = np.sqrt(dx * dx + dy * dy) + 1e-12
        f = weights[e] * (d - length) / d
        out[a, 0] += f * dx
        out[a, 1] += f * dy
        out[b, 0] -= f * dx
        out[b, 1] -= f * dy


@numba.njit(cache=True)
def _integrate(
    pos: np.ndarray, vel: np.ndarray, force: np.ndarray, mass: np.ndarray, damping: float, max_step: float
) -> float:
    """Damped velocity step in place; returns the mean displacement."""
    n = pos.shape[0]
    total = 0.0
    for i in range(n):
        vx = (vel[i, 0] + force[i, 0] / mass[i]) * damping
        vy = (vel[i, 1] + force[i, 1] / mass[i]) * damping
        speed = np.sqrt(vx * vx + vy * vy)
        if speed > max_step:
            vx *= max_step / speed
            vy *= max_step / speed
            speed = max_step
        vel[i, 0] = vx
        vel[i, 1] = vy
        pos[i, 0] += vx
        pos[i, 1] += vy
        total += speed
    return total / max(n, 1)


def _simulate(
    pos: np.ndarray,
    edges: np.ndarray,
    weights: np.ndarray,
    charge: np.ndarray,
    mass: np.ndarray,
    length: float,
    *,
    max_iterations: int,
    tolerance: float = 0.01,
    theta: float = 0.9,
) -> int:
    """Run the force simulation on ``pos`` (n, 2) in place until it settles; returns iterations.

    Forces are scaled so that a pair of unit charges at distance ``length`` on a unit spring
    balance; the centring force keeps the whole cloud at radius ~ sqrt(n) * length.
    """
    n = pos.shape[0]
    vel = np.zeros_like(pos)
    force = np.zeros_like(pos)
    # Repulsion q*Q/d against springs w*(d-L): at d ~ 2L a unit pair pulls as hard as it pushes.
    strength = 0.5 * length * length
    # Charge spread evenly over a disc of radius R pushes outward linearly in r (Gauss in 2-D);
    # a linear centring force then balances it at the disc where each node has area ~ length².
    radius2 = n * length * length / np.pi
    gravity = strength * float(charge.sum()) / radius2
    edges64 = edges.astype(np.int64)
    w = (weights / weights.mean()).astype(np.float64) if weights.size else weights.astype(np.float64)
    spring = 0.5 * w
    it = 0
    for it in range(1, max_iterations + 1):  # noqa: B007 - the count is returned
        force[:] = 0.0
        _repulsion(pos, charge, strength, theta, force)
        _springs(pos, edges64, spring, length, force)
        force -= gravity * charge[:, None] * pos
        # Cooling: the allowed step shrinks, so the system must settle in max_iterations.
        max_step = length * (0.05 + 1.0 * (1.0 - it / max_iterations))
        moved = _integrate(pos, vel, force, mass, 0.8, max_step)
        if it > 10 and moved < tolerance * length:
            break
    return it


# ---------------------------------------------------------------------------------------------
# Charges from activations


def probe_signal(sample_rate: int, seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """A signal that exercises an ear: a log sweep, a click train, a chord and noise bursts.

    Returns (round(seconds * sample_rate),) float32 in [-1, 1], the same for the same seed.
    """
    rng = np.random.default_rng(seed)
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    f0, f1 = 80.0, min(5000.0, 0.4 * sample_rate)
    sweep = np.sin(2 * np.pi * f0 * seconds / np.log(f1 / f0) * (np.exp(t / seconds * np.log(f1 / f0)) - 1))
    chord = np.sin(2 * np.pi * np.outer(t, [220.0, 277.2, 329.6])).mean(axis=1)
    clicks = np.zeros(n)
    clicks[:: max(1, sample_rate // 8)] = 1.0
    bursts = rng.standard_normal(n) * (np.sin(2 * np.pi * 1.5 * t) > 0.7)
    third = n // 3
    mix = np.concatenate([sweep[:third], chord[third : 2 * third], sweep[2 * third :] * 0.5]) + clicks + 0.3 * bursts
    return (0.5 * mix / np.max(np.abs(mix))).astype(np.float32)


def activation_stats(ear: Ear, seconds: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Run the test signal through ``ear``: (variance per neuron (n,), layer range (k, 2)), float32."""
    frames = ear.analyse(probe_signal(ear.sample_rate, seconds))
    variances = []
    ranges = []
    for layer in ear.layers:
        a = np.asarray(frames[layer.name], np.float32).reshape(-1, layer.size)
        if a.shape[0] == 0:
            variances.append(np.zeros(layer.size, np.float32))
            ranges.append((0.0, 1.0))
            continue
        variances.append(a.var(axis=0))
        lo, hi = np.percentile(a, [1, 99])
        ranges.append((float(lo), float(hi) if hi > lo else float(lo) + 1.0))
    return np.concatenate(variances).astype(np.float32), np.asarray(ranges, np.float32)


def charges_from_variance(variance: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """(n,) charges in [0.3, 3]: variance relative to its layer's mean, compressed by sqrt."""
    out = np.ones(variance.shape[0], np.float32)
    for k in np.unique(layer):
        v = variance[layer == k]
        mean = float(v.mean())
        if mean > 0:
            out[layer == k] = 0.3 + 0.7 * np.sqrt(v / mean)
    return np.clip(out, 0.3, 3.0)


# ---------------------------------------------------------------------------------------------
# Multilevel layout


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
        parent, ce, cw, cs, cq = _coarsen(rng, e, w, s, q)
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
        done = _simulate(pos, e, w, q, np.sqrt(s), length, max_iterations=iterations, theta=1.0 if nl > 8000 else 0.8)
        bar.set_postfix(nodes=nl, iterations=done)
        bar.update(1)
    bar.close()
    return _normalise(pos)


def _normalise(pos: np.ndarray) -> np.ndarray:
    """Centre, turn the main axis horizontal (screens are wide) and scale into [-1, 1]."""
    pos = pos - pos.mean(axis=0)
    if pos.shape[0] > 1:
        _, _, vt = np.linalg.svd(pos, full_matrices=False)
        pos = pos @ vt.T
    scale = float(np.abs(pos).max()) if pos.size else 1.0
    return (pos / (scale if scale > 0 else 1.0)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Per-ear cache


def _weights_fingerprint(ear: Ear) -> str:
    """What identifies the ear's weights: the weights file's hash, else the parameters' hash."""
    h = hashlib.sha256()
    for attr in ("weights_path", "weights_file", "weights"):
        value = getattr(ear, attr, None)
        if isinstance(value, (str, Path)) and Path(value).is_file():
            with open(value, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            return h.hexdigest()
    modules = [v for v in vars(ear).values() if isinstance(v, torch.nn.Module)]
    for module in modules:
        for name, tensor in module.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    if not modules:
        h.update(f"{type(ear).__module__}.{type(ear).__qualname__}".encode())
    return h.hexdigest()


def layout_key(ear: Ear, seed: int = 0) -> str:
    """Hash of what a layout depends on: the layer table, the weights, the seed, the version."""
    table = [(layer.name, list(layer.shape), layer.unit, layer.kind) for layer in ear.layers]
    blob = json.dumps(
        {"v": LAYOUT_VERSION, "ear": ear.name, "layers": table, "seed": seed, "weights": _weights_fingerprint(ear)},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cache_path(ear: Ear, key: str) -> Path:
    return paths.cache_dir() / "layouts" / f"{ear.name}-{key}.npz"


def shipped_path(ear: Ear) -> Path:
    return paths.models_dir() / f"{ear.name}.layout.npz"


def compute_layout(ear: Ear, *, seed: int = 0, progress: bool = False) -> Layout:
    """Build the layout of ``ear`` from scratch (no cache)."""
    layer, unit, edges = build_graph(ear.layers, seed=seed)
    variance, ranges = activation_stats(ear)
    charges = charges_from_variance(variance, layer)
    positions = layout_graph(layer.shape[0], edges, charges, seed=seed, progress=progress)
    return Layout(
        positions=positions,
        layer=layer,
        unit=unit,
        edges=edges,
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


# ---------------------------------------------------------------------------------------------
# Pictures, benchmark, CLI


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
    d = positions[edges[:, 0]] - positions[edges[:, 1]]
    return float(np.sqrt((d * d).sum(axis=1)).mean())


def mean_random_pair_length(positions: np.ndarray, pairs: int = 20000, seed: int = 0) -> float:
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
    from .ears import registry

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
