"""layout.grouped: the full connectivity laid out by group: exact springs, bands, a pixel per neuron."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from earsight.ears.base import Layer
from earsight.layout.blocks import Blocks, connectivity
from earsight.layout.grouped import _neighbours, group_springs, layout_blocks
from earsight.layout.quality import block_quality, random_pair_length
from earsight.layout.screen import distinct_pixel_fraction

TOY = [Layer("in", (2, 32)), Layer("c1", (8, 32)), Layer("c2", (8, 32)), Layer("c3", (8, 32))]
"""Four conv layers of 32 positions: four bands, positions running along each."""


@pytest.fixture(scope="module")
def toy() -> tuple[Blocks, np.ndarray]:
    blocks = connectivity(TOY)
    return blocks, layout_blocks(blocks, seed=0)


@pytest.mark.parametrize("reach", [0.0, 0.5])
def test_group_springs_are_the_sum_over_every_edge(reach: float) -> None:
    layers = [Layer("a", (3, 6)), Layer("b", (2, 3)), Layer("c", (4,), kind="recurrent")]
    blocks = connectivity(layers, kernel=3)
    rng = np.random.default_rng(0)
    pos = rng.normal(size=(blocks.n, 2))
    indptr, nbr = _neighbours(blocks)
    got = np.zeros_like(pos)
    group_springs(pos, np.ones(blocks.n), np.ones(blocks.n), blocks.group, indptr, nbr, 0.7, got, reach)
    want = np.zeros_like(pos)
    for i, j in blocks.edges():
        w = 1.0
        if reach:  # 1 / the rms length of every edge between the two groups
            a, b = pos[blocks.group == blocks.group[i]], pos[blocks.group == blocks.group[j]]
            rms2 = (((a[:, None] - b[None]) ** 2).sum(axis=2)).mean()
            w = reach / np.sqrt(rms2 + reach * reach * 1e-4)
        want[i] += 0.7 * w * (pos[j] - pos[i])
        want[j] += 0.7 * w * (pos[i] - pos[j])
    assert np.allclose(got, want)


def test_reach_shortens_the_wiring_by_the_measure() -> None:
    blocks = connectivity(TOY)
    assert block_quality(layout_blocks(blocks, seed=0, reach=0.2), blocks) < 0.9 * block_quality(
        layout_blocks(blocks, seed=0), blocks
    )


def test_layers_lie_in_bands(toy: tuple[Blocks, np.ndarray]) -> None:
    blocks, pos = toy
    _, near = cKDTree(pos).query(pos, 7)
    gap = np.abs(blocks.layer[near[:, 1:]] - blocks.layer[:, None])
    # A neuron's neighbours on the picture are of its layer or the next one (random: ~28 % farther).
    assert (gap >= 2).mean() < 0.03


def test_positions_run_along_each_band(toy: tuple[Blocks, np.ndarray]) -> None:
    blocks, pos = toy
    centre = np.array([pos[blocks.group == g].mean(axis=0) for g in range(blocks.group_layer.shape[0])])
    for k in range(len(TOY)):
        groups = np.flatnonzero(blocks.group_layer == k)
        d = np.linalg.norm(centre[groups, None] - centre[None, groups], axis=2)
        np.fill_diagonal(d, np.inf)
        step = np.abs(blocks.group_position[groups][d.argmin(axis=1)] - blocks.group_position[groups])
        # Each position's nearest position of its layer is a neighbour along it (random: ~12 %).
        assert (step <= 2).mean() > 0.9, f"layer {k}"


def test_every_neuron_has_a_pixel_of_its_own(toy: tuple[Blocks, np.ndarray]) -> None:
    blocks, pos = toy
    assert pos.shape == (blocks.n, 2) and pos.dtype == np.float32
    assert np.isfinite(pos).all() and np.abs(pos).max() <= 1.0 + 1e-6
    assert distinct_pixel_fraction(pos) == 1.0
    # Channels of one position spread: no two neurons of a group share a point.
    assert np.unique(pos, axis=0).shape[0] == blocks.n


def test_wiring_is_tight_on_all_edges(toy: tuple[Blocks, np.ndarray]) -> None:
    blocks, pos = toy
    assert block_quality(pos, blocks) < 0.3
    edges = blocks.edges()
    mean = np.linalg.norm(pos[edges[:, 0]] - pos[edges[:, 1]], axis=1).mean()
    assert np.isclose(block_quality(pos, blocks), mean / random_pair_length(pos), rtol=1e-5)


def test_a_seed_decides_the_layout(toy: tuple[Blocks, np.ndarray]) -> None:
    blocks, pos = toy
    assert np.array_equal(layout_blocks(blocks, seed=0), pos)
    assert not np.allclose(layout_blocks(blocks, seed=1), pos)


def test_charges_give_busy_neurons_room() -> None:
    blocks = connectivity([Layer("in", (4, 8)), Layer("out", (16, 8))])
    charges = np.where(np.arange(blocks.n) % 2 == 0, 3.0, 0.3)
    pos = layout_blocks(blocks, charges, seed=0)
    _, near = cKDTree(pos).query(pos, 2)
    spacing = np.linalg.norm(pos[near[:, 1]] - pos, axis=1)
    assert spacing[charges == 3.0].mean() > spacing[charges == 0.3].mean()
