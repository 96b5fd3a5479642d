"""The full connectivity of an ear's layers, kept as blocks: no edge is sampled, none is listed.

A conv output neuron (channel c, position p) connects to EVERY input channel at the input
positions of its window; a dense neuron to every neuron of the layer before; a recurrent
layer also to every other neuron of itself. So all channels of one position share the same
neighbours: a *group* is one position of one layer (a whole layer when it has one position),
and the connectivity is a list of group pairs, each standing for every edge between their
members (for a group paired with itself: every pair within it). 14 M edges are a few
thousand pairs, and a spring force on a neuron from a whole group is exact from the group's
centroid (:mod:`.grouped`).

An output position q of a layer with P positions reads, in an input of P' positions (stride
r = P'/P), the ``span`` positions around its centre (q + 0.5) r - 0.5 (within ``(span - 1) / 2``
of it). The span is what the ear declares (:attr:`Layer.kernel`: the kernel, plus what a pooling
after it adds); a layer that declares none is taken as a kernel of 5 at stride 1 before any
downsampling: ``5 + r - 1`` positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the layer table only: importing the ears would import torch
    from ..ears.base import Layer

KERNEL = 5
"""Kernel (in the input's positions at stride 1) of a conv layer whose ear declares none."""


@dataclass(frozen=True)
class Blocks:
    """Neurons, their groups, and the group pairs that stand for every edge.

    Neurons are numbered layer by layer, in C order of each layer's shape (as :class:`.Layout`).
    """

    layer: np.ndarray
    """(n,) int32 layer index of each neuron."""
    unit: np.ndarray
    """(n,) int32 flat unit index of each neuron within its layer."""
    group: np.ndarray
    """(n,) int64 group of each neuron."""
    group_layer: np.ndarray
    """(g,) int32 layer of each group."""
    group_position: np.ndarray
    """(g,) int32 position of each group along its layer's last axis (0 for one-position layers)."""
    pairs: np.ndarray
    """(b, 2) int64 group pairs g <= h: every edge between their members (g == h: within it)."""

    @property
    def n(self) -> int:
        return int(self.layer.shape[0])

    @property
    def sizes(self) -> np.ndarray:
        """(g,) neurons per group."""
        return np.bincount(self.group, minlength=self.group_layer.shape[0])

    def members(self) -> tuple[np.ndarray, np.ndarray]:
        """(start (g + 1,), neurons (n,)): the neurons of group g are ``neurons[start[g]:start[g + 1]]``."""
        order = np.argsort(self.group, kind="stable")
        return np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64), order.astype(np.int64)

    def pair_counts(self) -> np.ndarray:
        """(b,) edges each pair stands for."""
        s = self.sizes.astype(np.int64)
        g, h = self.pairs[:, 0], self.pairs[:, 1]
        return np.where(g == h, s[g] * (s[g] - 1) // 2, s[g] * s[h])

    @property
    def m(self) -> int:
        """How many edges the blocks stand for."""
        return int(self.pair_counts().sum())

    def edges(self, limit: int | None = None, seed: int = 0) -> np.ndarray:
        """(m, 2) int32 neuron pairs i < j: every edge, or a uniform sample of ``limit`` distinct ones."""
        start, neurons = self.members()
        counts = self.pair_counts()
        if limit is not None and limit < counts.sum():
            rng = np.random.default_rng(seed)
            if counts.sum() <= 4 * limit:  # few enough to list: choose among them
                every = self.edges()
                return every[np.sort(rng.choice(every.shape[0], limit, replace=False))]
            # Many: draw each edge uniformly (a pair by its count, then its members) until enough.
            code = np.zeros(0, np.int64)
            while code.shape[0] < limit:
                draw = limit + 16
                pick = rng.choice(counts.shape[0], draw, p=counts / counts.sum())
                g, h = self.pairs[pick, 0], self.pairs[pick, 1]
                sg, sh = start[g + 1] - start[g], start[h + 1] - start[h]
                a = neurons[start[g] + (rng.random(draw) * sg).astype(np.int64)]
                b = neurons[start[h] + (rng.random(draw) * sh).astype(np.int64)]
                keep = a != b
                lo, hi = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
                code = np.unique(np.concatenate([code, lo * self.n + hi]))
            code = np.sort(rng.permutation(code)[:limit])
            return np.stack([code // self.n, code % self.n], axis=1).astype(np.int32)
        parts = []
        for (g, h), c in zip(self.pairs, counts, strict=True):
            if c == 0:
                continue
            a, b = neurons[start[g] : start[g + 1]], neurons[start[h] : start[h + 1]]
            if g == h:
                i, j = np.triu_indices(a.shape[0], 1)
                aa, bb = a[i], a[j]
            else:
                aa, bb = np.repeat(a, b.shape[0]), np.tile(b, a.shape[0])
            parts.append(np.stack([np.minimum(aa, bb), np.maximum(aa, bb)], axis=1).astype(np.int32))
        if not parts:
            return np.zeros((0, 2), np.int32)
        out = np.concatenate(parts)
        return out[np.lexsort((out[:, 1], out[:, 0]))]


def _rows_positions(layer: Layer) -> tuple[int, int]:
    """A layer seen as (rows, positions): locality lives along the last axis of 2-D+ layers."""
    if len(layer.shape) >= 2:
        return int(np.prod(layer.shape[:-1])), int(layer.shape[-1])
    return int(layer.shape[0]), 1


def span(positions_in: int, positions_out: int, declared: int = 0, kernel: int = KERNEL) -> float:
    """How many input positions one output position reads: the ``declared`` span, or ``kernel``
    at stride 1 widened by the downsampling (``kernel + r - 1``)."""
    if declared > 0:
        return float(declared)
    return kernel + max(positions_in / positions_out - 1.0, 0.0)


def window(q: int, positions_in: int, positions_out: int, kernel: int = KERNEL, declared: int = 0) -> range:
    """Input positions that output position ``q`` reads (see the module's docstring)."""
    centre = (q + 0.5) * positions_in / positions_out - 0.5
    half = (span(positions_in, positions_out, declared, kernel) - 1) / 2
    lo = max(0, int(np.ceil(centre - half - 1e-9)))
    hi = min(positions_in - 1, int(np.floor(centre + half + 1e-9)))
    return range(lo, hi + 1)


def connectivity(layers: Sequence[Layer], *, kernel: int = KERNEL) -> Blocks:
    """The full connectivity of a layer table (``kind`` says how a layer reads the one before;
    ``kernel`` stands for the kernel of conv layers that declare none)."""
    sizes = [layer.size for layer in layers]
    layer_of = np.repeat(np.arange(len(layers), dtype=np.int32), sizes)
    unit_of = np.concatenate([np.arange(s, dtype=np.int32) for s in sizes]) if sizes else np.zeros(0, np.int32)
    shape = [_rows_positions(layer) for layer in layers]
    first = np.concatenate([[0], np.cumsum([p for _, p in shape])]).astype(np.int64)  # first group of each layer
    group = np.concatenate([first[k] + np.arange(r * p) % p for k, (r, p) in enumerate(shape)]) if sizes else unit_of
    group_layer = np.repeat(np.arange(len(layers), dtype=np.int32), [p for _, p in shape])
    group_position = np.concatenate([np.arange(p, dtype=np.int32) for _, p in shape]) if sizes else unit_of
    pairs: list[tuple[int, int]] = []
    for k in range(1, len(layers)):
        (_, p_in), (_, p_out) = shape[k - 1], shape[k]
        local = layers[k].kind == "conv" and p_in > 1 and p_out > 1
        for q in range(p_out):
            reads = window(q, p_in, p_out, kernel, layers[k].kernel) if local else range(p_in)
            pairs.extend((int(first[k - 1] + j), int(first[k] + q)) for j in reads)
    for k, layer in enumerate(layers):
        if layer.kind == "recurrent":  # every neuron to every other neuron of the layer
            p = shape[k][1]
            g = range(int(first[k]), int(first[k] + p))
            pairs.extend((a, b) for a in g for b in g if a <= b)
    return Blocks(
        layer=layer_of,
        unit=unit_of,
        group=group.astype(np.int64),
        group_layer=group_layer,
        group_position=group_position,
        pairs=np.array(sorted(set(pairs)), np.int64).reshape(-1, 2),
    )


def benchmark_layers() -> list[Layer]:
    """The issue's benchmark net, a CPC encoder's shape: 28,864 neurons, 13.9 M edges.

    Input 64 positions; four conv1d layers of 64/128/128/128 channels x 64 positions (kernel 5);
    a dense layer of 128.
    """
    from ..ears.base import Layer  # noqa: PLC0415 - torch comes with the ears: only when this is built

    return [
        Layer("input", (1, 64)),
        Layer("conv1", (64, 64)),
        Layer("conv2", (128, 64)),
        Layer("conv3", (128, 64)),
        Layer("conv4", (128, 64)),
        Layer("dense", (128,), "unit", "dense"),
    ]
