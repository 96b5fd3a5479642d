"""Where a neuron lands in the picture: layout positions fitted into pixels as the renderer fits them.

``render.state.ScreenFit`` takes its scale and centre from :func:`fit` and its fractions from
:func:`fractions` (the layout cannot import the renderer, which imports the layout);
``tests/test_layout_screen.py`` holds the two together. Pure numpy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

WIDTH, HEIGHT = 1280, 720
"""The picture the layout is spread for (the renderer's default)."""


MAX_STRETCH = 2.0
"""How much further one axis may be scaled than the other to fill the picture: a layout's
shape is its own, the picture's is 16:9, and a VJ wants the frame filled."""
MARGIN = 0.94
"""Fraction of the picture the layout's extent spans (along the axis that fills it)."""


class Fit(NamedTuple):
    """Layout units -> clip units: ``(position - centre) * scale``, per axis."""

    sx: float
    sy: float
    cx: float
    cy: float


def fit(pos: np.ndarray, width: int = WIDTH, height: int = HEIGHT) -> Fit:
    """The renderer's fit (``render.state.ScreenFit.of``): the layout's extent centred and scaled
    to fill the picture, one axis up to :data:`MAX_STRETCH` times more than the other."""
    if not pos.size:
        return Fit(MARGIN, MARGIN, 0.0, 0.0)
    lo, hi = pos.min(axis=0).astype(np.float64), pos.max(axis=0).astype(np.float64)
    cx, cy = (lo + hi) / 2
    rx, ry = np.maximum((hi - lo) / 2, 1e-6)
    half_w, half_h = width / 2, height / 2
    equal = min(half_w / rx, half_h / ry)  # pixels per unit, the same on both axes
    ppx = MARGIN * min(half_w / rx, MAX_STRETCH * equal)
    ppy = MARGIN * min(half_h / ry, MAX_STRETCH * equal)
    return Fit(float(ppx / half_w), float(ppy / half_h), float(cx), float(cy))


def pixel_size(pos: np.ndarray, width: int = WIDTH, height: int = HEIGHT) -> float:
    """One pixel in layout units, along the axis where a pixel spans more of them."""
    f = fit(pos, width, height)
    return max(2.0 / (f.sx * width), 2.0 / (f.sy * height))


def fractions(pos: np.ndarray, f: Fit) -> tuple[np.ndarray, np.ndarray]:
    """(n, 2) layout positions -> x, y as fractions of the picture, y down (``ScreenFit.fractions``)."""
    p = pos.astype(np.float64)
    return 0.5 + 0.5 * (p[:, 0] - f.cx) * f.sx, 0.5 - 0.5 * (p[:, 1] - f.cy) * f.sy


def pixels(pos: np.ndarray, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """(n,) index of the pixel each neuron's centre falls in, as the renderer draws it."""
    fx, fy = fractions(pos, fit(pos, width, height))
    px = np.clip(np.floor(fx * width), 0, width - 1).astype(np.int64)
    py = np.clip(np.floor(fy * height), 0, height - 1).astype(np.int64)
    return py * width + px


def distinct_pixel_fraction(pos: np.ndarray, width: int = WIDTH, height: int = HEIGHT) -> float:
    """Fraction of neurons whose centre pixel no other neuron shares."""
    if pos.shape[0] == 0:
        return 1.0
    _, inverse, counts = np.unique(pixels(pos, width, height), return_inverse=True, return_counts=True)
    return float((counts[inverse] == 1).mean())
