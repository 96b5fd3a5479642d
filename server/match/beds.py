"""The match: the bed of up to three sounds whose classes best describe a picture's.

A bed is a mixture of sounds, ``q = sum_i w_i q_i``; a picture's class distribution ``p`` is
restricted to the classes the library can express and renormalised. The score is the seed's
KL divergence, ``KL(p || q)``: the picture is the reference, so a bed is penalised for missing
what the picture shows (a sea without waves) and only mildly for a sound the picture does not
need, which the weights then turn down. For a fixed set of sounds ``KL(p || q)`` is convex in the
weights and EM finds the best ones (``w_i <- w_i sum_c p_c q_i(c) / q(c)``), so every candidate
is scored at its own best weights (within a milli-nat, tested) rather than on a grid. Each sound's distribution is smoothed
by :data:`SMOOTH` toward uniform over the expressible classes, so no divergence is infinite.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..errors import BadRequest
from . import classes
from .library import Library

MAX_SOUNDS = 3
"""A bed superimposes at most this many sounds (the seed's superimpositions)."""
MIN_WEIGHT = 0.1
"""A sound at less than this share of a bed is a smaller bed's: such beds are not answered."""
PARSIMONY = 0.1
"""Nats a bed's divergence must fall per sound it adds: of two beds that describe a picture about
as well, the one with fewer sounds wins (and a low-coverage picture gets one sound, not mush)."""
SMOOTH = 0.02
ITERATIONS = 200


@dataclass(frozen=True)
class Bed:
    sounds: tuple[str, ...]
    weights: tuple[float, ...]
    """Each sound's share of the bed's power, summing to 1."""
    divergence: float
    """KL(picture || bed) in nats over the expressible classes."""


@dataclass(frozen=True)
class Match:
    beds: tuple[Bed, ...]
    """The best beds, best first."""
    coverage: float
    """The share of the picture's class probability on classes the library expresses."""
    top: tuple[tuple[str, float], ...]
    """The picture's most probable classes, with their probabilities."""


class Matcher:
    """A library's candidate beds, prepared once; :meth:`match` scores a picture's classes."""

    def __init__(self, library: Library, max_sounds: int = MAX_SOUNDS) -> None:
        self.library = library
        self.idx, q = library.table()
        q = (1 - SMOOTH) * q + SMOOTH / q.shape[1]
        self.q = q
        n = len(library.sounds)
        self.combos = [np.array(list(itertools.combinations(range(n), k)), dtype=np.int64)
                       for k in range(1, min(max_sounds, n) + 1)]

    def match(self, probs: np.ndarray, best: int = 3) -> Match:
        probs = np.asarray(probs, dtype=np.float64)
        if probs.shape != (len(classes.names()),) or not np.all(np.isfinite(probs)) or probs.min() < 0:
            raise BadRequest(f"class probabilities must be {len(classes.names())} finite non-negative numbers")
        total = probs.sum()
        coverage = float(probs[self.idx].sum() / total) if total > 0 else 0.0
        p = probs[self.idx]
        p = p / p.sum() if p.sum() > 0 else np.full(p.size, 1.0 / p.size)
        beds: list[Bed] = []
        for combos in self.combos:
            weights, kl = _fit(p, self.q[combos])
            keep = weights.min(axis=1) >= MIN_WEIGHT if combos.shape[1] > 1 else np.ones(len(combos), bool)
            for c, w, d in zip(combos[keep], weights[keep], kl[keep], strict=True):
                order = np.argsort(-w)
                beds.append(Bed(tuple(self.library.sounds[c[i]].name for i in order),
                                tuple(float(w[i]) for i in order), float(d)))
        beds.sort(key=lambda b: b.divergence + PARSIMONY * (len(b.sounds) - 1))
        top = np.argsort(-probs)[:5]
        return Match(tuple(beds[:best]), coverage, tuple((classes.short(int(i)), float(probs[i] / total)) for i in top))


def _fit(p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best weights (B, k) of each candidate's sounds q (B, k, E) for p (E,), and KL(p || mixture) (B,)."""
    b, k, _ = q.shape
    w = np.full((b, k), 1.0 / k)
    if k > 1:
        pq = q * p  # (B, k, E): p_c q_i(c)
        for _ in range(ITERATIONS):
            mix = np.einsum("bk,bke->be", w, q)
            w = w * np.einsum("bke,be->bk", pq, 1.0 / mix)
    mix = np.einsum("bk,bke->be", w, q)
    nz = p > 0
    kl = (p[nz] * (np.log(p[nz]) - np.log(mix[:, nz]))).sum(axis=1)
    return w, kl
