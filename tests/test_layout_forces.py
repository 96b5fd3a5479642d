"""layout.forces: the quadtree, Barnes–Hut repulsion against the direct sum, springs, steps."""

from __future__ import annotations

import numpy as np
import pytest

from earsight.layout.forces import (
    build_quadtree,
    integrate,
    morton_order,
    repulsion,
    simulate,
    springs,
)


def direct_repulsion(pos: np.ndarray, charge: np.ndarray, strength: float) -> np.ndarray:
    """(n, 2) exact strength * q_i * sum_j q_j d / |d|², d = p_i - p_j."""
    out = np.zeros_like(pos)
    for start in range(0, pos.shape[0], 256):  # in slices: the full (n, n, 2) would take 300 MB
        d = pos[start : start + 256, None, :] - pos[None, :, :]
        d2 = (d * d).sum(axis=2)
        d2[d2 == 0] = np.inf  # a point does not push itself
        out[start : start + 256] = ((charge[None, :] / d2)[:, :, None] * d).sum(axis=1)
    return strength * charge[:, None] * out


def test_quadtree_holds_every_point_once_with_its_charge() -> None:
    rng = np.random.default_rng(0)
    pos = rng.normal(size=(300, 2))
    charge = rng.uniform(0.3, 3.0, 300)
    child, body, mass, com, half, count = build_quadtree(pos, charge)
    leaves = body[:count][body[:count] >= 0]
    assert sorted(leaves.tolist()) == list(range(300))
    assert np.isclose(mass[0], charge.sum())
    assert np.allclose(com[0], (charge[:, None] * pos).sum(axis=0) / charge.sum())
    assert half[0] >= 0.5 * np.ptp(pos, axis=0).max()
    assert child[:count].max() < count


def test_morton_order_keeps_neighbours_together() -> None:
    rng = np.random.default_rng(1)
    pos = rng.uniform(-1, 1, (2000, 2))
    order = morton_order(pos)
    assert sorted(order.tolist()) == list(range(2000))
    step = np.linalg.norm(np.diff(pos[order], axis=0), axis=1).mean()
    jump = np.linalg.norm(np.diff(pos, axis=0), axis=1).mean()
    assert step < 0.2 * jump


@pytest.mark.parametrize("n", [500, 4500])  # the serial kernel, then the parallel one
def test_repulsion_equals_the_direct_sum_when_every_cell_is_opened(n: int) -> None:
    rng = np.random.default_rng(n)
    pos = rng.normal(size=(n, 2))
    charge = rng.uniform(0.3, 3.0, n)
    exact = direct_repulsion(pos, charge, 0.5)
    out = np.zeros((n, 2))
    repulsion(pos, charge, 0.5, 0.0, out)  # theta 0: no cell is far enough to stand for its points
    assert np.allclose(out, exact, rtol=1e-8, atol=1e-10 * np.abs(exact).max())
    approx = np.zeros((n, 2))
    repulsion(pos, charge, 0.5, 0.8, approx)
    error = np.linalg.norm(approx - exact, axis=1) / np.linalg.norm(exact, axis=1)
    assert np.median(error) < 0.05


def test_springs_pull_stretched_edges_and_cancel_in_sum() -> None:
    pos = np.array([[0.0, 0.0], [2.0, 0.0]])
    out = np.zeros((2, 2))
    springs(pos, np.array([[0, 1]]), np.array([1.0]), 1.0, out)
    assert np.allclose(out, [[1.0, 0.0], [-1.0, 0.0]])  # w * (d - length) along the edge
    rng = np.random.default_rng(2)
    pos = rng.normal(size=(50, 2))
    edges = rng.integers(0, 50, (200, 2))
    edges = edges[edges[:, 0] != edges[:, 1]]
    out = np.zeros((50, 2))
    springs(pos, edges, rng.uniform(0.5, 2.0, edges.shape[0]), 0.3, out)
    assert np.abs(out).max() > 0
    assert np.allclose(out.sum(axis=0), 0.0, atol=1e-9)


def test_integrate_caps_the_step() -> None:
    pos = np.zeros((3, 2))
    vel = np.zeros((3, 2))
    force = np.array([[1e6, 0.0], [0.0, -1e6], [3e5, 4e5]])
    moved = integrate(pos, vel, force, np.ones(3), 0.8, 0.1)
    assert np.isclose(moved, 0.1)
    assert np.allclose(np.linalg.norm(pos, axis=1), 0.1)
    assert np.allclose(pos[2] / 0.1, [0.6, 0.8])


def test_a_chain_settles_with_neighbours_close() -> None:
    rng = np.random.default_rng(3)
    n = 60
    pos = rng.uniform(-1, 1, (n, 2))
    edges = np.stack([np.arange(n - 1), np.arange(1, n)], axis=1)
    length = 1.0 / np.sqrt(n)
    done = simulate(pos, edges, np.ones(n - 1), np.ones(n), np.ones(n), length, max_iterations=400)
    assert 10 < done <= 400
    assert np.isfinite(pos).all()
    neighbours = np.linalg.norm(pos[1:] - pos[:-1], axis=1).mean()
    assert 0.3 * length < neighbours < 3 * length
    assert neighbours < 0.3 * np.linalg.norm(pos[:, None] - pos[None, :], axis=2).mean()
