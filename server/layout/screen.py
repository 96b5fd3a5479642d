"""Where a neuron lands in the picture: layout positions fitted into pixels as the renderer fits them.

``render.state.ScreenFit.of`` takes its scale from :func:`fit_scale`; :func:`pixels` repeats
``ScreenFit.fractions`` (two lines: the layout cannot import the renderer, which imports the
layout), and ``tests/test_layout_screen.py`` holds the two together. Pure numpy.
"""

from __future__ import annotations

import numpy as np

WIDTH, HEIGHT = 1280, 720
"""The picture the layout is spread for (the renderer's default)."""


def fit_scale(pos: np.ndarray, width: int = WIDTH, height: int = HEIGHT) -> tuple[float, float]:
    """Layout units -> picture fractions * 2, (x, y): ``render.state.ScreenFit.of(...).scale``."""
    xr = float(np.abs(pos[:, 0]).max()) if pos.size else 1.0
    yr = float(np.abs(pos[:, 1]).max()) if pos.size else 1.0
    half_w, half_h = width / 2, height / 2
    pixels_per_unit = 0.94 * min(half_w / max(xr, 1e-6), half_h / max(yr, 1e-6))
    return pixels_per_unit / half_w, pixels_per_unit / half_h


def pixel_size(pos: np.ndarray, width: int = WIDTH, height: int = HEIGHT) -> float:
    """One pixel in layout units when ``pos`` is fitted into the picture as the renderer fits it."""
    return 2.0 / (fit_scale(pos, width, height)[0] * width)


def pixels(pos: np.ndarray, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """(n,) index of the pixel each neuron's centre falls in (``ScreenFit.fractions``, the same arithmetic)."""
    sx, sy = fit_scale(pos, width, height)
    fx = 0.5 + 0.5 * pos[:, 0] * sx
    fy = 0.5 - 0.5 * pos[:, 1] * sy
    px = np.clip(np.floor(fx * width), 0, width - 1).astype(np.int64)
    py = np.clip(np.floor(fy * height), 0, height - 1).astype(np.int64)
    return py * width + px


def distinct_pixel_fraction(pos: np.ndarray, width: int = WIDTH, height: int = HEIGHT) -> float:
    """Fraction of neurons whose centre pixel no other neuron shares."""
    if pos.shape[0] == 0:
        return 1.0
    _, inverse, counts = np.unique(pixels(pos, width, height), return_inverse=True, return_counts=True)
    return float((counts[inverse] == 1).mean())
