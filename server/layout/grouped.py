"""Layout of the full connectivity (:class:`.Blocks`), exact and without listing an edge.

Springs are linear (zero rest length; repulsion keeps neurons apart), so the spring energy
k/2 sum |x_i - x_j|^2 over ALL edges gives neuron i in group G the force
k * sum_H |H| (centroid_H - x_i) over G's neighbour groups H: one centroid per group and one
sum per group pair per step, whatever the edge count (the benchmark's 13.9 M edges are 1,320
group pairs). The same formula holds for a node standing for s neurons of one group (times s),
so the levels are chunks of groups (whole groups, then quarters ... single neurons), laid out
coarse to fine with Barnes-Hut repulsion (:mod:`.forces`) and a centring force; the coarsest
starts from a spectral embedding, so rings of positions never settle mirrored.
Channels of one position share every neighbour: only repulsion separates them. Then
:func:`separate` pushes apart neurons closer than 2.5 pixels of a 1280x720 picture fitted as
the renderer fits it (:mod:`.screen`), and :func:`own_pixels` moves any neuron still sharing
a pixel to the nearest free one, so every neuron gets a pixel of its own.
"""

from __future__ import annotations

import numba
import numpy as np
from tqdm import tqdm

from .blocks import Blocks
from .forces import integrate, repulsion
from .multilevel import normalise_axes
from .screen import HEIGHT, WIDTH, fit, fractions, pixel_size, pixels


@numba.njit(cache=True)
def group_springs(
    pos: np.ndarray, weight: np.ndarray, grip: np.ndarray, group: np.ndarray, indptr: np.ndarray,
    nbr: np.ndarray, stiffness: float, out: np.ndarray, reach: float = 0.0,
) -> None:
    """Add the linear spring forces of every edge between groups to ``out`` (n, 2).

    ``weight[i]`` neurons sit at node i of group ``group[i]``; group G's neighbour groups are
    ``nbr[indptr[G]:indptr[G + 1]]`` (G itself for a layer wired within itself). The springs
    pull node i ``grip[i]`` times as hard (its neurons' summed charge, or ``weight``: see
    :func:`_simulate`).
    ``reach`` > 0: each group pair's springs are scaled by reach / (their rms length), whose
    square is exactly |c_G - c_H|^2 + var_G + var_H. Re-weighted every step, this minimises the
    SUM of edge lengths (as Weiszfeld's iteration does), the measure a layout is judged by,
    rather than the sum of squares that lets a few long edges weigh too much.
    """
    g = indptr.shape[0] - 1
    sx = np.zeros(g)
    sy = np.zeros(g)
    sq = np.zeros(g)
    mass = np.zeros(g)
    for i in range(pos.shape[0]):
        k = group[i]
        sx[k] += weight[i] * pos[i, 0]
        sy[k] += weight[i] * pos[i, 1]
        sq[k] += weight[i] * (pos[i, 0] * pos[i, 0] + pos[i, 1] * pos[i, 1])
        mass[k] += weight[i]
    var = np.zeros(g)
    for k in range(g):
        if mass[k] > 0:
            var[k] = max(0.0, sq[k] / mass[k] - (sx[k] * sx[k] + sy[k] * sy[k]) / (mass[k] * mass[k]))
    ax = np.zeros(g)
    ay = np.zeros(g)
    degree = np.zeros(g)
    for k in range(g):
        for e in range(indptr[k], indptr[k + 1]):
            h = nbr[e]
            w = 1.0
            if reach > 0.0 and mass[k] > 0 and mass[h] > 0:
                dx = sx[k] / mass[k] - sx[h] / mass[h]
                dy = sy[k] / mass[k] - sy[h] / mass[h]
                w = reach / np.sqrt(dx * dx + dy * dy + var[k] + var[h] + reach * reach * 1e-4)
            ax[k] += w * sx[h]
            ay[k] += w * sy[h]
            degree[k] += w * mass[h]
    for i in range(pos.shape[0]):
        k = group[i]
        f = stiffness * grip[i]
        out[i, 0] += f * (ax[k] - degree[k] * pos[i, 0])
        out[i, 1] += f * (ay[k] - degree[k] * pos[i, 1])


@numba.njit(cache=True)
def _separate_pass(pos: np.ndarray, delta: float) -> int:
    """Push apart every pair closer than ``delta`` (half the shortfall each); returns how many were."""
    n = pos.shape[0]
    x0, y0 = pos[:, 0].min(), pos[:, 1].min()
    gx = int((pos[:, 0].max() - x0) / delta) + 1
    gy = int((pos[:, 1].max() - y0) / delta) + 1
    head = -np.ones(gx * gy, np.int64)
    nxt = -np.ones(n, np.int64)
    cx = np.empty(n, np.int64)
    cy = np.empty(n, np.int64)
    for i in range(n):
        cx[i] = min(gx - 1, int((pos[i, 0] - x0) / delta))
        cy[i] = min(gy - 1, int((pos[i, 1] - y0) / delta))
        c = cx[i] * gy + cy[i]
        nxt[i] = head[c]
        head[c] = i
    close = 0
    for i in range(n):
        for ux in range(max(0, cx[i] - 1), min(gx, cx[i] + 2)):
            for uy in range(max(0, cy[i] - 1), min(gy, cy[i] + 2)):
                j = head[ux * gy + uy]
                while j >= 0:
                    if j > i:
                        dx = pos[j, 0] - pos[i, 0]
                        dy = pos[j, 1] - pos[i, 1]
                        d = np.sqrt(dx * dx + dy * dy)
                        if d < delta:
                            close += 1
                            if d < 1e-12:  # coincident: part them along a direction of their own
                                a = 2.399963 * (i + j)
                                dx, dy, d = np.cos(a) * 1e-12, np.sin(a) * 1e-12, 1e-12
                            push = 0.5 * (delta - d) / d
                            pos[i, 0] -= push * dx
                            pos[i, 1] -= push * dy
                            pos[j, 0] += push * dx
                            pos[j, 1] += push * dy
                    j = nxt[j]
    return close


@numba.njit(cache=True)
def _free_pixels(
    pix: np.ndarray, fx: np.ndarray, fy: np.ndarray, width: int, height: int,
    x_lo: int, x_hi: int, y_lo: int, y_hi: int,
) -> np.ndarray:
    """(n,) a pixel of its own for every neuron: its own, or the nearest free one in [lo, hi]."""
    n = pix.shape[0]
    owner = -np.ones(width * height, np.int64)
    out = pix.copy()
    for i in range(n):
        if owner[pix[i]] < 0:
            owner[pix[i]] = i
    for i in range(n):
        if owner[pix[i]] == i:
            continue
        cx = pix[i] % width
        cy = pix[i] // width
        best = -1
        best_d = 1e30
        r = 1
        while r < max(width, height):
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    if max(abs(dx), abs(dy)) != r:
                        continue
                    x = cx + dx
                    y = cy + dy
                    if x < x_lo or x > x_hi or y < y_lo or y > y_hi or owner[y * width + x] >= 0:
                        continue
                    ex = x + 0.5 - fx[i] * width
                    ey = y + 0.5 - fy[i] * height
                    d = ex * ex + ey * ey
                    if d < best_d:
                        best_d = d
                        best = y * width + x
            # A free pixel in ring r may be farther than one in ring r + 1: look one ring more.
            if best >= 0 and best_d <= r * r:
                break
            r += 1
        if best >= 0:
            owner[best] = i
            out[i] = best
    return out


def own_pixels(pos: np.ndarray, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """``pos`` (float32) with every neuron that shares its pixel moved to the nearest free pixel's centre.

    Only pixels inside the layout's extent are used, so the renderer's fit (from the extent)
    does not change and the pixels stay as computed.
    """
    pos = np.asarray(pos, np.float32).copy()
    for _ in range(3):  # float rounding of a moved centre could in principle need a second look
        pix = pixels(pos, width, height)
        if np.unique(pix).shape[0] == pix.shape[0]:
            break
        f = fit(pos, width, height)
        fx, fy = fractions(pos, f)
        lo, hi = pos.min(axis=0).astype(np.float64), pos.max(axis=0).astype(np.float64)
        # Pixels whose centre lies strictly inside the extent (y down in the picture).
        x_lo = int(np.ceil((0.5 + 0.5 * (lo[0] - f.cx) * f.sx) * width)) + 1
        x_hi = int(np.floor((0.5 + 0.5 * (hi[0] - f.cx) * f.sx) * width)) - 2
        y_lo = int(np.ceil((0.5 - 0.5 * (hi[1] - f.cy) * f.sy) * height)) + 1
        y_hi = int(np.floor((0.5 - 0.5 * (lo[1] - f.cy) * f.sy) * height)) - 2
        new = _free_pixels(pix, fx, fy, width, height, x_lo, x_hi, y_lo, y_hi)
        moved = new != pix
        px, py = new[moved] % width, new[moved] // width
        pos[moved, 0] = ((px + 0.5) / width - 0.5) * 2 / f.sx + f.cx
        pos[moved, 1] = (0.5 - (py + 0.5) / height) * 2 / f.sy + f.cy
    return pos


def separate(pos: np.ndarray, pixels_apart: float = 2.5, passes: int = 40) -> np.ndarray:
    """Push close neurons apart, towards ``pixels_apart`` pixels (a crowded clump may need more ``passes``)."""
    pos = pos.astype(np.float64).copy()
    for _ in range(passes):
        if _separate_pass(pos, pixels_apart * pixel_size(pos)) == 0:
            break
    return pos


def _chunks(group: np.ndarray, size: int) -> np.ndarray:
    """(n,) node of each neuron when each group is cut into chunks of ``size`` neurons."""
    order = np.argsort(group, kind="stable")
    g = group[order]
    first = np.searchsorted(g, g)  # index of the first neuron of each one's group
    rank = np.arange(g.shape[0]) - first
    key = g * (g.shape[0] + 1) + rank // size
    _, node_sorted = np.unique(key, return_inverse=True)
    node = np.empty_like(node_sorted)
    node[order] = node_sorted
    return node


def _neighbours(blocks: Blocks) -> tuple[np.ndarray, np.ndarray]:
    """CSR over groups: each pair from both ends, a self pair once."""
    g, h = blocks.pairs[:, 0], blocks.pairs[:, 1]
    other = g != h
    a = np.concatenate([g, h[other]])
    b = np.concatenate([h, g[other]])
    order = np.argsort(a, kind="stable")
    indptr = np.zeros(blocks.group_layer.shape[0] + 1, np.int64)
    np.add.at(indptr, a + 1, 1)
    return np.cumsum(indptr), b[order].astype(np.int64)


def layout_blocks(
    blocks: Blocks,
    charges: np.ndarray | None = None,
    *,
    seed: int = 0,
    progress: bool = False,
    pull: float = 256.0,
    aspect: float = WIDTH / HEIGHT,
    reach: float = 0.0,
) -> np.ndarray:
    """(n, 2) float32 positions in [-1, 1] (x the long axis) of every neuron of ``blocks``.

    ``pull``: the summed spring stiffness of a neuron of mean degree, against repulsion between
    neurons a natural length apart (more: tighter wiring, less even spread). ``aspect``: the
    cloud's width over height (the centring force is weaker along x by its inverse).
    ``reach`` > 0 (a fraction of the cloud's natural radius) re-weights the springs towards the
    sum of edge lengths (:func:`group_springs`): a third shorter by that measure, but the bands
    thin, interleave and may twist, so the shipped layouts keep it off.
    """
    rng = np.random.default_rng(seed)
    n = blocks.n
    charge = np.ones(n) if charges is None else np.asarray(charges, np.float64)
    indptr, nbr = _neighbours(blocks)
    degree = 2.0 * blocks.m / max(n, 1)
    # Chunk sizes: whole groups first, then quartered until single neurons.
    biggest = int(blocks.sizes.max()) if n else 1
    sizes = [1]
    while sizes[-1] * 4 < biggest:
        sizes.append(sizes[-1] * 4)
    sizes.append(biggest)
    nodes = [_chunks(blocks.group, s) for s in sizes]
    fine_length = 1.0 / np.sqrt(max(n, 1))
    pos = np.zeros((0, 2))
    bar = tqdm(total=len(sizes), desc="layout", unit="level", disable=not progress)
    for lvl in range(len(sizes) - 1, -1, -1):
        node = nodes[lvl]
        nl = int(node.max()) + 1 if n else 0
        weight = np.bincount(node, minlength=nl).astype(np.float64)
        q = np.bincount(node, weights=charge, minlength=nl)
        group = np.zeros(nl, np.int64)
        group[node] = blocks.group
        length = fine_length * np.sqrt(n / max(nl, 1))
        if lvl == len(sizes) - 1:
            pos = _spectral(blocks, node, nl, rng) * np.sqrt(nl) * length
        else:
            up = np.zeros(nl, np.int64)
            up[node] = nodes[lvl + 1]  # each node's parent one level coarser
            pos = pos[up] + rng.normal(0, 0.3 * length, (nl, 2))
        iterations = int(np.clip(2e5 / max(nl, 1), 40, 300))
        done = _simulate(
            pos, weight, q, group, indptr, nbr, 0.5 * pull / degree, fine_length, length, aspect, iterations,
            reach * np.sqrt(n) * fine_length,
        )
        bar.set_postfix(nodes=nl, iterations=done)
        bar.update(1)
    bar.close()
    return _normalise(pos[nodes[0]])  # level 0's nodes are neurons in group order: back to neuron order


def _spectral(blocks: Blocks, node: np.ndarray, nl: int, rng: np.random.Generator) -> np.ndarray:
    """(nl, 2) start of the coarsest level: the graph's two smoothest Laplacian eigenvectors.

    A force layout started at random can settle twisted (a ring of positions mirrored against
    the next layer's, every edge across the picture) and no later level undoes it; the
    spectral embedding is globally consistent, and the groups of a few hundred cost nothing.
    """
    group = np.zeros(nl, np.int64)
    group[node] = blocks.group
    sizes = np.bincount(node, minlength=nl).astype(np.float64)
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(blocks.group_layer.shape[0] + 1))
    w = np.zeros((nl, nl))
    for g, h in blocks.pairs:
        if g != h:  # edges between two nodes: the product of the neurons they stand for
            a, b = order[bounds[g] : bounds[g + 1]], order[bounds[h] : bounds[h + 1]]
            w[np.ix_(a, b)] += np.outer(sizes[a], sizes[b])
    w = w + w.T
    d = w.sum(axis=1)
    if nl < 3 or not (d > 0).all():
        return rng.uniform(-1, 1, (nl, 2))
    inv = 1.0 / np.sqrt(d)
    _, vec = np.linalg.eigh(np.eye(nl) - inv[:, None] * w * inv[None, :])
    out = inv[:, None] * vec[:, 1:3]
    out /= np.abs(out).max(axis=0, keepdims=True) + 1e-12
    return out + rng.normal(0, 0.01, out.shape)


def _simulate(
    pos: np.ndarray, weight: np.ndarray, charge: np.ndarray, group: np.ndarray, indptr: np.ndarray,
    nbr: np.ndarray, stiffness: float, fine_length: float, length: float, aspect: float, iterations: int,
    reach: float = 0.0,
) -> int:
    """Settle one level in place; returns the iterations run.

    Every level is the finest level's system with each node's neurons at one point (charges,
    spring pulls and masses summed), so a coarse level settles where the fine one will start.
    A neuron's springs pull as many times as hard as its charge pushes: a busy neuron then
    still gets room among its neighbours (they are pushed off it), but it is not pushed out of
    its group at the rim of the cloud, where the whole cloud's field would hold it alone.
    Repulsion strength * q * Q / d; at a fine neuron's natural spacing ``fine_length`` a unit
    pair pushes 0.5 fine_length, and a neuron of mean degree displaced by that much is pulled
    back by ``pull`` times as much (``stiffness`` = 0.5 pull / mean degree per edge).
    """
    nl = pos.shape[0]
    vel = np.zeros_like(pos)
    force = np.zeros_like(pos)
    strength = 0.5 * fine_length * fine_length
    # Charge spread evenly over an ellipse of area ~ n fine_length^2 pushes outward linearly;
    # a linear centring force balances it there. An ellipse a wide by b high needs it weaker
    # along x by b / a.
    n = float(weight.sum())
    radius2 = n * fine_length * fine_length / np.pi
    gravity = strength * float(charge.sum()) / radius2 * np.array([1.0 / np.sqrt(aspect), np.sqrt(aspect)])
    theta = 1.0 if nl > 8000 else 0.8
    it = 0
    for it in range(1, iterations + 1):  # noqa: B007 - the count is returned
        force[:] = 0.0
        repulsion(pos, charge, strength, theta, force)
        group_springs(pos, weight, charge, group, indptr, nbr, stiffness, force, reach)
        force -= charge[:, None] * gravity[None, :] * pos
        # Cooling: the allowed step shrinks, so the level settles within its iterations.
        max_step = length * (0.05 + 1.0 * (1.0 - it / iterations))
        moved = integrate(pos, vel, force, weight, 0.8, max_step)
        if it > 10 and moved < 0.01 * length:
            break
    return it


def _normalise(pos: np.ndarray) -> np.ndarray:
    """Centre, turn the main axis horizontal, scale into [-1, 1], then give every neuron its pixel."""
    pos = normalise_axes(pos)
    if pos.shape[0] > 1:
        pos = separate(pos)
        pos = (pos - pos.mean(axis=0)) / float(np.abs(pos - pos.mean(axis=0)).max())
        return own_pixels(pos)
    return pos.astype(np.float32)
