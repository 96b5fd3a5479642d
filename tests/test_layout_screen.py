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
