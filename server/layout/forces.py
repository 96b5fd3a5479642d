"""The force simulation of one level of the layout (numba): Barnes–Hut repulsion, springs, steps.

Repulsion goes through a quadtree (Barnes–Hut): a far cell acts as one charge at its centre.
Bodies are visited in Morton (Z-curve) order, so consecutive ones walk the same cells.
Arrays: positions ``pos`` (n, 2) float64, charges (n,) float64, edges (m, 2) int64.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def build_quadtree(pos: np.ndarray, charge: np.ndarray) -> tuple[
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
def morton_order(pos: np.ndarray) -> np.ndarray:
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
    order = morton_order(pos)
    spos = pos[order]
    sq = charge[order]
    child, body, mass, com, half, _ = build_quadtree(spos, sq)
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
    order = morton_order(pos)
    spos = pos[order]
    sq = charge[order]
    child, body, mass, com, half, _ = build_quadtree(spos, sq)
    stack = np.empty(256, np.int64)
    for s in range(pos.shape[0]):
        fx, fy = _cell_force(s, spos, child, body, mass, com, half, theta * theta, stack)
        i = order[s]
        out[i, 0] += strength * sq[s] * fx
        out[i, 1] += strength * sq[s] * fy


def repulsion(pos: np.ndarray, charge: np.ndarray, strength: float, theta: float, out: np.ndarray) -> None:
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
def springs(pos: np.ndarray, edges: np.ndarray, weights: np.ndarray, length: float, out: np.ndarray) -> None:
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
def integrate(
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


def simulate(
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
        repulsion(pos, charge, strength, theta, force)
        springs(pos, edges64, spring, length, force)
        force -= gravity * charge[:, None] * pos
        # Cooling: the allowed step shrinks, so the system must settle in max_iterations.
        max_step = length * (0.05 + 1.0 * (1.0 - it / max_iterations))
        moved = integrate(pos, vel, force, mass, 0.8, max_step)
        if it > 10 and moved < tolerance * length:
            break
    return it
