"""The neural graph of an ear: one node per neuron, edges sampled from how its layers connect.

Pure numpy. A neuron is one unit of a layer (a channel at a frequency position, a tag, ...);
neurons are numbered layer by layer, and within a layer in C order of its shape.
A sample, a few edges a neuron: the ears' layouts use the full connectivity (:mod:`.blocks`);
this graph serves :mod:`.multilevel`, the layout of a general graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the layer table only: importing the ears would import torch
    from ..ears.base import Layer


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


def csr(n: int, edges: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric CSR (indptr (n+1,), indices (2m,), weights (2m,)) of an undirected edge list."""
    a = np.concatenate([edges[:, 0], edges[:, 1]]).astype(np.int64)
    b = np.concatenate([edges[:, 1], edges[:, 0]]).astype(np.int64)
    w = np.concatenate([weights, weights]).astype(np.float64)
    order = np.argsort(a, kind="stable")
    indptr = np.zeros(n + 1, np.int64)
    np.add.at(indptr, a + 1, 1)
    return np.cumsum(indptr), b[order], w[order]
