"""The GL objects of one renderer: shader programs (from files), framebuffers, textures, buffers.

Shader sources are read from :func:`earsight.paths.shaders_dir`, one file per program holding
every stage (``#if defined VERTEX_SHADER ... #elif defined FRAGMENT_SHADER ... #endif``, as
moderngl-window lays them out), or from ``$EARSIGHT_SHADERS`` for the programs found there.
Contexts come from :mod:`earsight.render.context` only; what is drawn with these objects is in
:mod:`earsight.render.views`.
"""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path

import moderngl
import numpy as np
from scipy.ndimage import binary_dilation

from .. import paths
from ..errors import EarsightError
from .context import GL_VERSION
from .glow import SCALE
from .state import RenderState

log = logging.getLogger(__name__)

PROGRAMS = ("neuron_ids", "neurons", "markers", "edges", "edge_ends", "pack_maps", "mark_structure", "hallucination", "features", "blit")
ROW_WIDTH = 1024
"""Width of the activation texture: neuron i is texel (i % ROW_WIDTH, i // ROW_WIDTH)."""

# ---------------------------------------------------------------------------------------------
# Shader files

_STAGES = {
    "vertex_shader": "VERTEX_SHADER",
    "geometry_shader": "GEOMETRY_SHADER",
    "fragment_shader": "FRAGMENT_SHADER",
}
def shader_path(name: str) -> Path:
    """``<name>.glsl`` from ``$EARSIGHT_SHADERS`` when that folder has it, else the package's.

    The override lets a VJ live-edit a copy of one program (the renderer reloads it when its
    file changes) without touching the installed package.
    """
    override = os.environ.get("EARSIGHT_SHADERS")
    if override:
        path = Path(override) / f"{name}.glsl"
        if path.is_file():
            return path
    return paths.shaders_dir() / f"{name}.glsl"


def shader_sources(name: str) -> dict[str, str]:
    """Split ``shaders/<name>.glsl`` into its stages (moderngl-window style).

    The file holds every stage under ``#if defined VERTEX_SHADER ... #elif defined
    FRAGMENT_SHADER ... #endif``; each stage gets the file with its macro defined after the
    ``#version`` line. Returns keyword arguments for ``ctx.program``.
    """
    path = shader_path(name)
    if not path.is_file():
        raise EarsightError(f"gl: no shader {name!r} at {path}")
    text = path.read_text()
    match = re.search(r"^\s*#version[^\n]*\n", text, re.MULTILINE)
    if not match:
        text = f"#version {GL_VERSION} core\n" + text
        match = re.search(r"^\s*#version[^\n]*\n", text, re.MULTILINE)
    assert match is not None
    head, body = text[: match.end()], text[match.end() :]
    out = {}
    for arg, macro in _STAGES.items():
        if re.search(rf"defined\s*\(?\s*{macro}\b", body):
            # #line keeps compiler messages pointing at the file's own line numbers.
            line = head.count("\n") + 1
            out[arg] = f"{head}#define {macro} 1\n#line {line}\n{body}"
    if "vertex_shader" not in out:
        raise EarsightError(f"gl: shader {path} has no VERTEX_SHADER section")
    return out


def load_program(ctx: moderngl.Context, name: str) -> moderngl.Program:
    """Compile ``shaders/<name>.glsl``; raises EarsightError with the compiler's message."""
    try:
        src = shader_sources(name)
        return ctx.program(
            vertex_shader=src["vertex_shader"],
            geometry_shader=src.get("geometry_shader"),
            fragment_shader=src.get("fragment_shader"),
        )
    except moderngl.Error as err:
        raise EarsightError(f"gl: shader {name!r} does not compile: {err}") from err


def shader_mtime(name: str) -> float:
    try:
        return shader_path(name).stat().st_mtime
    except OSError:
        return 0.0


def set_uniform(program: moderngl.Program, name: str, value: object) -> None:
    """Set a uniform if the program has it."""
    # Compilers drop unused uniforms; a live-edited shader may not use every one.
    if name in program:
        program[name].value = value  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------
# Vertex data


def quads(positions: np.ndarray) -> np.ndarray:
    """(n, 2) centres -> (4n, 5) float32 vertices (x, y, corner x, corner y, index), 4 per quad."""
    corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float32)
    n = positions.shape[0]
    out = np.empty((n, 4, 5), np.float32)
    out[:, :, :2] = positions[:, None, :]
    out[:, :, 2:4] = corners[None]
    out[:, :, 4] = np.arange(n, dtype=np.float32)[:, None]
    return out.reshape(4 * n, 5)


def edge_vertices(positions: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(m, 2) edges -> (2m, 6) float32 line vertices (x, y, texel of end a (x, y), texel of end b)."""
    texel = np.stack([np.arange(positions.shape[0]) % ROW_WIDTH, np.arange(positions.shape[0]) // ROW_WIDTH], axis=1)
    out = np.empty((edges.shape[0], 2, 6), np.float32)
    out[:, :, :2] = positions[edges]
    out[:, :, 2:4] = texel[edges[:, 0]][:, None, :]
    out[:, :, 4:6] = texel[edges[:, 1]][:, None, :]
    return out.reshape(-1, 6)


TILE = 32
"""Pixels per side of the tiles the layout view draws; the others are cleared."""


def tile_mask(busy: np.ndarray, tile: int = TILE) -> np.ndarray:
    """(h, w) bool -> (rows, cols) bool: the tiles that hold any of it."""
    h, w = busy.shape
    rows, cols = -(-h // tile), -(-w // tile)
    padded = np.zeros((rows * tile, cols * tile), bool)
    padded[:h, :w] = busy
    return np.asarray(padded.reshape(rows, tile, cols, tile).any(axis=(1, 3)))


def tile_triangles(used: np.ndarray, size: tuple[int, int], tile: int = TILE) -> np.ndarray:
    """(rows, cols) bool tiles of a (h, w) picture, bottom row first -> (6k, 2) float32
    clip-space triangles covering them: k rectangles, one per run of used tiles along a row (a
    software rasteriser pays per triangle too)."""
    h, w = size
    padded = np.zeros((used.shape[0], used.shape[1] + 2), bool)
    padded[:, 1:-1] = used
    edges = np.diff(padded.astype(np.int8), axis=1)
    r, c0 = np.nonzero(edges == 1)  # a run starts (row-major order, as the ends)
    _, c1 = np.nonzero(edges == -1)  # ... and ends before this column
    x0, x1 = c0 * tile / w * 2 - 1, np.minimum(c1 * tile, w) / w * 2 - 1
    y0, y1 = r * tile / h * 2 - 1, np.minimum((r + 1) * tile, h) / h * 2 - 1
    corners = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1), np.stack([x0, y1], 1),
                        np.stack([x0, y1], 1), np.stack([x1, y0], 1), np.stack([x1, y1], 1)], axis=1)
    return corners.reshape(-1, 2).astype(np.float32)


def tiles(busy: np.ndarray, tile: int = TILE) -> np.ndarray:
    """(h, w) bool, bottom row first: where something may show -> (6k, 2) float32 clip-space
    triangles covering the k tiles that hold any of it. The layout view runs its per-pixel pass
    only there and clears the rest: on a software rasteriser a pixel costs the same lit or not."""
    return tile_triangles(tile_mask(busy, tile), busy.shape, tile)


def quad_indices(n: int) -> np.ndarray:
    """(6n,) int32 indices: two triangles per quad of :func:`quads`."""
    return (np.arange(n, dtype=np.int32)[:, None] * 4 + np.array([0, 1, 2, 2, 1, 3], np.int32)).reshape(-1)


# ---------------------------------------------------------------------------------------------
# The objects


class GLObjects:
    """Every GL object a renderer draws with, built once per layout and size in ``ctx``.

    Call its methods with ``ctx`` current (the renderer's GL lock held).
    """

    def __init__(self, ctx: moderngl.Context, state: RenderState, *, max_edges: int, halluc_scale: float) -> None:
        self.ctx = ctx
        lay = state.layout
        width, height = state.width, state.height
        size = (width, height)
        self.fbo = ctx.simple_framebuffer(size, components=4)
        # Half floats: texel coordinates below 2048 are exact, and half the bytes per pixel to read.
        self.ids_tex = ctx.texture(size, 4, dtype="f2")
        self.ids_tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self.ids_fbo = ctx.framebuffer(color_attachments=[self.ids_tex], depth_attachment=ctx.depth_renderbuffer(size))
        hw = max(1, int(width * halluc_scale))
        hh = max(1, int(height * halluc_scale))
        self.small_tex = ctx.texture((hw, hh), 3)
        self.small_tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self.small_fbo = ctx.framebuffer(color_attachments=[self.small_tex])
        # Activations as a texture, ROW_WIDTH wide: one upload per frame, looked up per pixel.
        rows = max(1, -(-lay.n // ROW_WIDTH))
        # Colours are computed per neuron on the CPU (19k neurons cost less than a colour-map
        # lookup per pixel in a software rasteriser): RGB and the light in alpha.
        self.act_tex = ctx.texture((ROW_WIDTH, rows), 4)
        self.act_tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._act_pad = np.zeros((ROW_WIDTH * rows, 4), np.uint8)
        self.triangle = ctx.buffer(np.array([-1, -1, 3, -1, -1, 3], np.float32).tobytes())
        centred = state.fit.centred(lay.positions)  # the shaders only scale
        self.pos_buf = ctx.buffer(centred.tobytes())
        self.quad_buf = ctx.buffer(quads(centred).tobytes())
        self.quad_ibo = ctx.buffer(quad_indices(lay.n).tobytes())
        self.sel_buf = ctx.buffer(reserve=64 * 20, dynamic=True)
        self.sel_ibo = ctx.buffer(reserve=64 * 24, dynamic=True)
        self.n_markers = 0
        self.overlay_tex = ctx.texture(size, 4)
        self.overlay_tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self.overlay_boxes: list[tuple[int, int, int, int]] = []
        # Where each edge pixel's two neurons live (edge_ends.glsl), baked beside the index map.
        self.ends_tex = ctx.texture(size, 4, dtype="f2")
        self.ends_tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self.ends_fbo = ctx.framebuffer(color_attachments=[self.ends_tex])
        # Both maps in one texel per pixel (pack_maps.glsl): what the layout view reads each frame.
        self.map_tex = ctx.texture(size, 4, dtype="u4")
        self.map_tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self.map_fbo = ctx.framebuffer(color_attachments=[self.map_tex])
        gh, gw = state.glow.shape
        self._presence = state.glow.presence  # rows bottom first, as GL's
        self.tile_buf = ctx.buffer(reserve=24, dynamic=True)  # tiles with neurons or edges
        self.n_tiles = 0
        self.glow_tile_buf = ctx.buffer(reserve=24, dynamic=True)  # tiles where anything may show
        self.n_glow_tiles = 0
        self.glow_tex = ctx.texture((gw, gh), 4)
        self.glow_tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self.glow_tex.repeat_x = self.glow_tex.repeat_y = False
        edges = lay.edges
        if edges.shape[0] > max_edges:
            keep = np.random.default_rng(state.seed).choice(edges.shape[0], max_edges, replace=False)
            edges = edges[np.sort(keep)]
        self.n_edges = int(edges.shape[0])
        self.ends_buf = ctx.buffer(edge_vertices(centred, edges).tobytes() or b"\0" * 24)
        self.edge_ibo = ctx.buffer(np.ascontiguousarray(edges, np.int32).tobytes() or b"\0" * 8)
        self.programs: dict[str, moderngl.Program] = {}
        self.shader_error: str | None = None
        self._mtimes: dict[str, float] = {}
        self._last_check = 0.0

    # ------------------------------------------------------------------------ programs

    def reload(self, strict: bool) -> list[str]:
        """Recompile every program and rebind the vertex arrays; returns the names compiled.

        A program that fails keeps its previous version (``shader_error`` says why), unless
        ``strict`` or there is none yet: then the error is raised.
        """
        fresh: dict[str, moderngl.Program] = {}
        errors = []
        for name in PROGRAMS:
            try:
                fresh[name] = load_program(self.ctx, name)
                self._mtimes[name] = shader_mtime(name)
            except EarsightError as err:
                if strict or name not in self.programs:
                    raise
                errors.append(str(err))
                self._mtimes[name] = shader_mtime(name)  # don't retry until the file changes again
        self.shader_error = "\n".join(errors) or None
        if errors:
            log.error("render: %s", self.shader_error)
        old = self.programs
        self.programs = {**old, **fresh}
        self._build_vaos()
        for name, program in old.items():
            if name in fresh:
                program.release()
        return list(fresh)

    def files_changed(self) -> bool:
        """Whether a shader file changed on disk since it was loaded (looked at twice a second at most)."""
        now = time.perf_counter()
        if now - self._last_check < 0.5:
            return False
        self._last_check = now
        return any(shader_mtime(name) != self._mtimes.get(name) for name in PROGRAMS)

    def _build_vaos(self) -> None:
        ctx = self.ctx
        pr = self.programs
        self.vao_ids = ctx.vertex_array(
            pr["neuron_ids"],
            [(self.quad_buf, "2f 2f 1f", "in_position", "in_corner", "in_index")],
            index_buffer=self.quad_ibo,
            index_element_size=4,
        )
        self.vao_markers = ctx.vertex_array(
            pr["markers"],
            [(self.sel_buf, "2f 2f 4x", "in_position", "in_corner")],
            index_buffer=self.sel_ibo,
            index_element_size=4,
        )
        self.vao_edges = ctx.vertex_array(
            pr["edges"], [(self.pos_buf, "2f", "in_position")], index_buffer=self.edge_ibo, index_element_size=4
        )
        self.vao_ends = ctx.vertex_array(pr["edge_ends"], [(self.ends_buf, "2f 4f", "in_position", "in_ends")])
        full = [(self.triangle, "2f", "in_position")]
        self.vao_neurons = ctx.vertex_array(pr["neurons"], [(self.tile_buf, "2f", "in_position")])
        self.vao_glow = ctx.vertex_array(pr["blit"], [(self.glow_tile_buf, "2f", "in_position")])
        self.vao_halluc = ctx.vertex_array(pr["hallucination"], full)
        self.vao_features = ctx.vertex_array(pr["features"], full)
        self.vao_blit = ctx.vertex_array(pr["blit"], full)
        self.vao_pack = ctx.vertex_array(pr["pack_maps"], full)
        self.vao_mark = ctx.vertex_array(pr["mark_structure"], full)

    # ------------------------------------------------------------------------ uploads

    def upload_selection(self, positions: np.ndarray) -> None:
        """Markers at (s, 2) centred layout positions (``ScreenFit.centred``; s = 0: none)."""
        need = max(1, positions.shape[0])
        if self.sel_buf.size < need * 80:
            self.sel_buf.orphan(need * 80)
            self.sel_ibo.orphan(need * 24)
        if positions.shape[0]:
            self.sel_buf.write(quads(positions).tobytes())
            self.sel_ibo.write(quad_indices(need).tobytes())
        self.n_markers = int(positions.shape[0])

    def upload_overlay(self, rgba: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> None:
        """(height, width, 4) uint8, top row first: labels and legend; ``boxes`` (x, y, w, h),
        y up: where it is not transparent. Stored bottom row first, as GL reads, so the blit
        program draws it as it draws every other texture."""
        self.overlay_tex.write(np.ascontiguousarray(rgba[::-1]).tobytes())
        self.overlay_boxes = list(boxes)

    def find_tiles(self) -> None:
        """After the maps are baked: the tiles the layout view draws (:func:`tiles`). The glow
        pass runs on every tile where something may show; the neuron pass, on top of it, only on
        tiles that hold a neuron or an edge (and there only where one is: the depth test against
        the marks of mark_structure.glsl); the rest are cleared."""
        h, w = self.ids_tex.height, self.ids_tex.width
        ids = np.frombuffer(self.ids_tex.read(), np.float16).reshape(h, w, 4)
        structure = (ids[..., 2] <= 1.0) | (ids[..., 3] > 0.5)
        # Where the glow may show: one grey level at the default strength (four at the strongest).
        glow = np.repeat(np.repeat(self._presence >= 1.0 / 255, SCALE, axis=0), SCALE, axis=1)
        gh, gw = glow.shape
        grown = np.zeros((max(h, gh), max(w, gw)), bool)
        grown[:gh, :gw] = glow
        glowing = binary_dilation(grown, iterations=SCALE)[:h, :w]
        full = tile_mask(structure)
        self.n_tiles = self._write_tiles(self.tile_buf, full, (h, w))
        self.n_glow_tiles = self._write_tiles(self.glow_tile_buf, tile_mask(glowing) | full, (h, w))

    @staticmethod
    def _write_tiles(buf: moderngl.Buffer, used: np.ndarray, size: tuple[int, int]) -> int:
        triangles = tile_triangles(used, size)
        buf.orphan(max(24, triangles.nbytes))
        buf.write(triangles.tobytes() or b"\0" * 24)
        return int(triangles.shape[0])

    def upload_glow(self, rgba: np.ndarray) -> None:
        """(rows, cols, 4) uint8 the glow's colours, bottom row first."""
        self.glow_tex.write(np.ascontiguousarray(rgba, np.uint8).tobytes())

    def upload_neurons(self, rgba: np.ndarray) -> None:
        """(n, 4) uint8: each neuron's colour and light."""
        self._act_pad[: rgba.shape[0]] = rgba
        self.act_tex.write(self._act_pad.tobytes())
