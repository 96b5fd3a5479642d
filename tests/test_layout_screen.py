"""layout.screen: the layout's idea of pixels is the renderer's (render.state.ScreenFit)."""

from __future__ import annotations

import numpy as np
import pytest

from earsight import paths
from earsight.layout import Layout
from earsight.layout.grouped import own_pixels
from earsight.layout.screen import distinct_pixel_fraction, pixels
from earsight.render.state import ScreenFit


def renderer_pixels(pos: np.ndarray, width: int, height: int) -> np.ndarray:
    fx, fy = ScreenFit.of(pos, width, height).fractions(pos)
    return np.floor(fy * height).astype(np.int64) * width + np.floor(fx * width).astype(np.int64)


def test_pixels_are_the_renderers() -> None:
    rng = np.random.default_rng(0)
    for shape in ((5000, 2), (300, 2)):
        pos = (rng.uniform(-1, 1, shape) * [1.0, 0.6]).astype(np.float32)
        for width, height in ((1280, 720), (640, 640)):
            assert np.array_equal(pixels(pos, width, height), renderer_pixels(pos, width, height))


def test_crowded_neurons_move_to_free_pixels_nearby() -> None:
    rng = np.random.default_rng(1)
    pos = (rng.normal(0, 0.02, (3000, 2)) * [1, 0.5]).astype(np.float32)
    pos[:4] = [[1, 0.3], [-1, -0.3], [0.5, 0.3], [0.2, -0.3]]  # the extent: the fit stays as it was
    assert distinct_pixel_fraction(pos) < 0.5
    moved = own_pixels(pos)
    pix = renderer_pixels(moved, 1280, 720)
    assert np.unique(pix).shape[0] == pix.shape[0], "every neuron on a pixel of its own, as the renderer draws"
    assert distinct_pixel_fraction(moved) == 1.0
    assert np.array_equal(np.abs(moved).max(axis=0), np.abs(pos).max(axis=0))
    kept = pixels(pos) == pixels(moved)
    assert kept.sum() >= np.unique(pixels(pos)).shape[0], "a neuron alone on its pixel stays"


@pytest.mark.parametrize("name", ["crepe", "musicnn", "cpc"])
def test_every_shipped_neuron_has_a_pixel_of_its_own(name: str) -> None:
    layout = Layout.load(paths.models_dir() / f"{name}.layout.npz")
    pix = renderer_pixels(layout.positions, 1280, 720)
    assert np.unique(pix).shape[0] == layout.n


def test_the_fit_fills_the_picture_stretching_one_axis_at_most_twice() -> None:
    from earsight.layout.screen import MARGIN, MAX_STRETCH, fit

    rng = np.random.default_rng(2)
    # A square layout, off the origin: centred, and stretched to fill 16:9 (less than twice).
    square = rng.uniform(0, 1, (500, 2)) + [3.0, -2.0]
    fx, fy = ScreenFit.of(square, 1280, 720).fractions(square)
    assert fx.min() == pytest.approx(0.03, abs=2e-3) and fx.max() == pytest.approx(0.97, abs=2e-3)
    assert fy.min() == pytest.approx(0.03, abs=2e-3) and fy.max() == pytest.approx(0.97, abs=2e-3)
    f = fit(square, 1280, 720)
    assert 1.0 < (f.sx * 640) / (f.sy * 360) <= MAX_STRETCH  # pixels per unit, x against y
    # A thin strip: as wide as the picture, and only twice as tall as an equal scale would make it.
    strip = rng.uniform(-1, 1, (500, 2)) * [1.0, 0.05]
    fx, fy = ScreenFit.of(strip, 1280, 720).fractions(strip)
    assert np.ptp(fx) == pytest.approx(MARGIN, abs=2e-3)
    equal = MARGIN * 640 / (np.ptp(strip[:, 0]) / 2)  # pixels per unit at an equal scale
    assert np.ptp(fy) * 720 == pytest.approx(MAX_STRETCH * equal * np.ptp(strip[:, 1]), rel=1e-3)
