"""Live pictures of an ear: its neural layout lit by activations, and two generative views.

Views:

- ``layout``: every neuron of the ear at its place in the :mod:`earsight.layout`, coloured by
  its (per-layer normalised, attack/decay smoothed) activation; edges faint underneath;
  selected neurons highlighted.
- ``hallucination``: a CPPN shader steered by the ``top``/``tags`` vector (or the ear's own
  output layer when nobody sent one), after the audio-visual hallucinations seed.
- ``features``: a kaleidoscope whose ten parameters are the ``embed`` features (or the energy
  of each layer) through a random permutation that :meth:`Renderer.shuffle` redraws.

Any thread may call :meth:`Renderer.draw` (calls are serialised and each makes the renderer's
context current, so several renderers share a process); ``select``, ``set_vector``,
``shuffle``, ``view`` and ``colormap`` only stage changes, and :meth:`Renderer.jpeg` only
encodes the last drawn frame, so the web view and the OSC server may call them any time.
"""

from __future__ import annotations

import argparse
import io
import logging
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import moderngl
import numpy as np
from PIL import Image
from tqdm import tqdm

from . import gl
from .ears.base import Ear
from .errors import BadRequest, EarsightError
from .layout import Layout, get_layout, probe_signal

log = logging.getLogger(__name__)

VIEWS = ("layout", "hallucination", "features")
COLORMAPS = ("magma", "viridis", "inferno", "gray")
VECTORS = ("tags", "top", "embed")
PROGRAMS = ("neuron_ids", "neurons", "markers", "edges", "hallucination", "features", "blit")
ROW_WIDTH = 1024
EDGE_COLOR = (0.035, 0.04, 0.055)
N_PARAMS = 10
N_LATENT = 8
BACKGROUND = (0.02, 0.02, 0.03)
HIGHLIGHT = (0.1, 1.0, 0.85)


def colormap_texture_data(name: str) -> np.ndarray:
    """(256, 3) uint8 colours of matplotlib's colour map ``name``."""
    import matplotlib

    if name not in COLORMAPS:
        raise BadRequest(f"unknown colour map {name!r} (colour maps: {', '.join(COLORMAPS)})")
    rgba = matplotlib.colormaps[name](np.linspace(0.0, 1.0, 256))
    return np.ascontiguousarray((rgba[:, :3] * 255).round().astype(np.uint8))


def _quads(positions: np.ndarray) -> np.ndarray:
    """(n, 2) centres -> (4n, 5) float32 vertices (x, y, corner x, corner y, index), 4 per quad."""
    corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]], np.float32)
    n = positions.shape[0]
    out = np.empty((n, 4, 5), np.float32)
    out[:, :, :2] = positions[:, None, :]
    out[:, :, 2:4] = corners[None]
    out[:, :, 4] = np.arange(n, dtype=np.float32)[:, None]
    return out.reshape(4 * n, 5)


def _quad_indices(n: int) -> np.ndarray:
    """(6n,) int32 indices: two triangles per quad of :func:`_quads`."""
    return (np.arange(n, dtype=np.int32)[:, None] * 4 + np.array([0, 1, 2, 2, 1, 3], np.int32)).reshape(-1)


def _mat4_blocks(w: np.ndarray) -> list[tuple[float, ...]]:
    """(4r, 4c) matrix -> r*c GLSL mat4s (column-major), block (i, j) at i * c + j."""
    r, c = w.shape[0] // 4, w.shape[1] // 4
    return [tuple(float(x) for x in w[4 * i : 4 * i + 4, 4 * j : 4 * j + 4].T.reshape(-1)) for i in range(r) for j in range(c)]


def _vec4s(v: np.ndarray) -> list[tuple[float, ...]]:
    """(4k,) -> k vec4s."""
    return [tuple(float(x) for x in v[i : i + 4]) for i in range(0, v.shape[0], 4)]


class Renderer:
    """Draws an ear's activations with moderngl, headless (EGL) or in a window.

    ``update`` takes the latest frame of each layer; ``draw`` renders the current view and
    returns it as an (height, width, 3) uint8 image, top row first.
    """

    attack = 0.6
    """Fraction of the way a neuron's shown value moves up towards a louder frame, per update."""
    decay = 0.12
    """... and down towards a quieter one: fast attack, slow decay, so clicks stay visible."""
    envelope_release = 0.02
    """How fast a layer's normalisation range shrinks after a loud passage, per update."""
    max_edges = 200_000
    """Edges drawn at most (a random subset); they are drawn once per layout, not per frame."""
    halluc_scale = 0.2
    """The CPPN is smooth: it runs at this fraction of the resolution and is scaled up."""

    def __init__(
        self,
        ear: Ear,
        layout: Layout | None = None,
        *,
        width: int = 1280,
        height: int = 720,
        window: bool = False,
        seed: int = 0,
    ) -> None:
        self.ear = ear
        self.layout = layout if layout is not None else get_layout(ear, progress=False)
        if tuple(self.layout.layer_names) != tuple(ear.layer_names):
            raise EarsightError(f"layout layers {self.layout.layer_names} do not match ear {ear.name!r}")
        self.width, self.height = int(width), int(height)
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._view = "layout"
        self._colormap = "magma"
        self._lock = threading.Lock()  # guards state shared with other threads (selection, last frame)
        self._gl_lock = threading.RLock()  # one GL user at a time; each makes our context current
        self._last = np.zeros((self.height, self.width, 3), np.uint8)
        self._t0 = time.perf_counter()
        self._time_override: float | None = None

        lay = self.layout
        self._offsets = lay.offsets()
        self._sizes = [layer.size for layer in ear.layers]
        n = lay.n
        self._target = np.zeros(n, np.float32)
        self._shown = np.zeros(n, np.float32)
        k = len(self._sizes)
        self._lo = np.zeros(k, np.float32)
        self._hi = np.zeros(k, np.float32)
        self._seen = np.zeros(k, bool)
        ranges = lay.layer_range.astype(np.float32)
        # A layer's range never shrinks below a quarter of what the test signal spanned, so
        # silence shows as calm instead of amplified noise.
        self._floor = np.maximum(0.25 * (ranges[:, 1] - ranges[:, 0]), 1e-6)
        self._selection: tuple[str, list[int]] = ("", [])
        self._selected = np.zeros(0, np.int64)
        self._dirty_selection = False
        self._dirty_colormap = False
        self._n_markers = 0
        self._vectors: dict[str, np.ndarray] = {}
        self._projections: dict[int, np.ndarray] = {}
        self._latent = np.zeros(N_LATENT, np.float32)
        self._features = np.zeros(N_PARAMS, np.float32)
        self._feature_lo = np.zeros(0, np.float32)
        self._feature_hi = np.zeros(0, np.float32)
        self.permutation = np.arange(N_PARAMS)
        self.shuffle(seed)
        self._cppn = self._cppn_weights(seed)

        self.ctx = gl.create_context(window=window, size=(self.width, self.height))
        self._window = gl.window_of(self.ctx) is not None
        self._build_gl()
        self._programs: dict[str, moderngl.Program] = {}
        self._mtimes: dict[str, float] = {}
        self._last_check = 0.0
        self.shader_error: str | None = None
        self.reload_shaders(strict=True)

    # ------------------------------------------------------------------------------- GL objects

    def _build_gl(self) -> None:
        ctx = self.ctx
        lay = self.layout
        size = (self.width, self.height)
        self.fbo = ctx.simple_framebuffer(size, components=3)
        # Half floats: texel coordinates below 2048 are exact, and half the bytes per pixel to read.
        self._ids_tex = ctx.texture(size, 4, dtype="f2")
        self._ids_tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._ids_fbo = ctx.framebuffer(color_attachments=[self._ids_tex], depth_attachment=ctx.depth_renderbuffer(size))
        hw = max(1, int(self.width * self.halluc_scale))
        hh = max(1, int(self.height * self.halluc_scale))
        self._small_tex = ctx.texture((hw, hh), 3)
        self._small_tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self._small_fbo = ctx.framebuffer(color_attachments=[self._small_tex])
        self._cmap_tex = ctx.texture((256, 1), 3, colormap_texture_data(self._colormap).tobytes())
        self._cmap_tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
        self._cmap_tex.repeat_x = False
        # Activations as a texture, ROW_WIDTH wide: one upload per frame, looked up per pixel.
        rows = max(1, -(-lay.n // ROW_WIDTH))
        self._act_tex = ctx.texture((ROW_WIDTH, rows), 1, dtype="f4")
        self._act_tex.filter = (moderngl.NEAREST, moderngl.NEAREST)
        self._act_pad = np.zeros(ROW_WIDTH * rows, np.float32)
        self._triangle = ctx.buffer(np.array([-1, -1, 3, -1, -1, 3], np.float32).tobytes())
        self._pos_buf = ctx.buffer(np.ascontiguousarray(lay.positions, np.float32).tobytes())
        self._quad_buf = ctx.buffer(_quads(lay.positions).tobytes())
        self._quad_ibo = ctx.buffer(_quad_indices(lay.n).tobytes())
        self._sel_buf = ctx.buffer(reserve=64 * 20, dynamic=True)
        self._sel_ibo = ctx.buffer(reserve=64 * 24, dynamic=True)
        edges = lay.edges
        if edges.shape[0] > self.max_edges:
            keep = np.random.default_rng(self._seed).choice(edges.shape[0], self.max_edges, replace=False)
            edges = edges[np.sort(keep)]
        self._n_edges = int(edges.shape[0])
        self._edge_ibo = ctx.buffer(np.ascontiguousarray(edges, np.int32).tobytes() or b"\0" * 8)
        self._fit()

    def _fit(self) -> None:
        """Scale layout space to clip space: whole layout visible, equal scale on both axes."""
        p = self.layout.positions
        xr = float(np.abs(p[:, 0]).max()) if p.size else 1.0
        yr = float(np.abs(p[:, 1]).max()) if p.size else 1.0
        half_w, half_h = self.width / 2, self.height / 2
        pixels_per_unit = 0.94 * min(half_w / max(xr, 1e-6), half_h / max(yr, 1e-6))
        self._scale = (pixels_per_unit / half_w, pixels_per_unit / half_h)
        # Radius from the area each neuron gets on screen, so a big ear stays legible.
        area = 4 * xr * yr * pixels_per_unit**2
        radius_px = float(np.clip(0.6 * np.sqrt(area / max(self.layout.n, 1)), 2.0, 14.0))
        self.radius_px = radius_px
        self._radius = (radius_px / half_w, radius_px / half_h)
        marker_px = max(2.2 * radius_px, 6.0)
        self._marker_radius = (marker_px / half_w, marker_px / half_h)

    def _build_vaos(self) -> None:
        ctx = self.ctx
        pr = self._programs
        self._vao_ids = ctx.vertex_array(
            pr["neuron_ids"],
            [(self._quad_buf, "2f 2f 1f", "in_position", "in_corner", "in_index")],
            index_buffer=self._quad_ibo,
            index_element_size=4,
        )
        self._vao_markers = ctx.vertex_array(
            pr["markers"],
            [(self._sel_buf, "2f 2f 4x", "in_position", "in_corner")],
            index_buffer=self._sel_ibo,
            index_element_size=4,
        )
        self._vao_edges = ctx.vertex_array(
            pr["edges"], [(self._pos_buf, "2f", "in_position")], index_buffer=self._edge_ibo, index_element_size=4
        )
        full = [(self._triangle, "2f", "in_position")]
        self._vao_neurons = ctx.vertex_array(pr["neurons"], full)
        self._vao_halluc = ctx.vertex_array(pr["hallucination"], full)
        self._vao_features = ctx.vertex_array(pr["features"], full)
        self._vao_blit = ctx.vertex_array(pr["blit"], full)

    def _bake(self) -> None:
        """Draw what never changes while the layout stays: the neuron index map and edge density."""
        ctx = self.ctx
        fbo = self._ids_fbo
        fbo.use()
        fbo.color_mask = (True, True, True, True)
        fbo.clear(0.0, 0.0, 2.0, 0.0, depth=1.0)  # distance 2: no neuron here
        if self._n_edges:
            fbo.color_mask = (False, False, False, True)
            ctx.enable(moderngl.BLEND)
            ctx.blend_func = moderngl.ONE, moderngl.ONE
            self._set(self._programs["edges"], "u_scale", self._scale)
            self._vao_edges.render(moderngl.LINES, vertices=2 * self._n_edges)
            ctx.disable(moderngl.BLEND)
        fbo.color_mask = (True, True, True, False)
        ctx.enable(moderngl.DEPTH_TEST)
        ids = self._programs["neuron_ids"]
        self._set(ids, "u_row_width", ROW_WIDTH)
        self._set(ids, "u_scale", self._scale)
        self._set(ids, "u_radius", self._radius)
        self._vao_ids.render(moderngl.TRIANGLES, vertices=6 * self.layout.n)
        ctx.disable(moderngl.DEPTH_TEST)
        fbo.color_mask = (True, True, True, True)

    def reload_shaders(self, *, strict: bool = False) -> list[str]:
        """Recompile every program from ``shaders/``; returns the names reloaded.

        A program that fails to compile keeps its previous version (``shader_error`` says why),
        so a typo while live-editing never blanks the show. ``strict`` raises instead (start-up).
        """
        with self._gl_lock, self.ctx:
            return self._reload_shaders(strict)

    def _reload_shaders(self, strict: bool) -> list[str]:
        fresh: dict[str, moderngl.Program] = {}
        errors = []
        for name in PROGRAMS:
            try:
                fresh[name] = gl.load_program(self.ctx, name)
                self._mtimes[name] = gl.shader_mtime(name)
            except EarsightError as err:
                if strict or name not in self._programs:
                    raise
                errors.append(str(err))
                self._mtimes[name] = gl.shader_mtime(name)  # don't retry until the file changes again
        self.shader_error = "\n".join(errors) or None
        if errors:
            log.error("render: %s", self.shader_error)
        old = self._programs
        self._programs = {**old, **fresh}
        self._build_vaos()
        self._bake()
        for name, program in old.items():
            if name in fresh:
                program.release()
        return list(fresh)

    def _check_shaders(self) -> None:
        """Reload when a shader file changed on disk (checked twice a second at most)."""
        now = time.perf_counter()
        if now - self._last_check < 0.5:
            return
        self._last_check = now
        if any(gl.shader_mtime(name) != self._mtimes.get(name) for name in PROGRAMS):
            self._reload_shaders(False)  # already inside our context: entering it again would nest

    # ------------------------------------------------------------------------------- state

    @property
    def view(self) -> str:
        return self._view

    @view.setter
    def view(self, name: str) -> None:
        if name not in VIEWS:
            raise BadRequest(f"unknown view {name!r} (views: {', '.join(VIEWS)})")
        self._view = name

    @property
    def colormap(self) -> str:
        return self._colormap

    @colormap.setter
    def colormap(self, name: str) -> None:
        colormap_texture_data(name)  # validates the name now; the upload happens on the GL thread
        with self._lock:
            self._colormap = name
            self._dirty_colormap = True

    @property
    def selection(self) -> tuple[str, list[int]]:
        """(layer, channels) last selected; ("", []) when nothing is."""
        return self._selection

    def select(self, layer: str, channels: list[int]) -> None:
        """Highlight ``channels`` (indices along the layer's first axis) of ``layer``; [] clears.

        Safe from any thread (the web view's, the OSC server's): the markers are uploaded by
        the next draw, on the renderer's own thread.
        """
        spec = self.ear.layer(layer)  # raises BadRequest for an unknown layer
        chans = [int(c) for c in channels]
        bad = [c for c in chans if not 0 <= c < spec.channels]
        if bad:
            raise BadRequest(f"layer {layer!r} has channels 0..{spec.channels - 1}, not {bad}")
        per_channel = spec.size // spec.channels
        units = (np.asarray(chans, np.int64)[:, None] * per_channel + np.arange(per_channel)).reshape(-1)
        with self._lock:
            self._selected = self.layout.index(layer, units) if chans else np.zeros(0, np.int64)
            self._selection = (layer, chans) if chans else ("", [])
            self._dirty_selection = True

    def _upload(self) -> None:
        """Apply staged selection and colour-map changes (GL thread only)."""
        with self._lock:
            if self._dirty_colormap:
                self._cmap_tex.write(colormap_texture_data(self._colormap).tobytes())
                self._dirty_colormap = False
            if not self._dirty_selection:
                return
            selected = self._selected
            self._dirty_selection = False
        need = max(1, selected.shape[0])
        if self._sel_buf.size < need * 80:
            self._sel_buf.orphan(need * 80)
            self._sel_ibo.orphan(need * 24)
        if selected.size:
            self._sel_buf.write(_quads(self.layout.positions[selected]).tobytes())
            self._sel_ibo.write(_quad_indices(need).tobytes())
        self._n_markers = int(selected.size)

    def selected_neurons(self) -> np.ndarray:
        """(s,) neuron indices (into the layout) currently highlighted."""
        return self._selected.copy()

    def shuffle(self, seed: int | None = None) -> np.ndarray:
        """Redraw which feature drives which visual parameter (one of 10! mappings); returns it."""
        rng = np.random.default_rng(seed) if seed is not None else self._rng
        self.permutation = rng.permutation(N_PARAMS)
        return self.permutation

    def set_vector(self, name: str, values: list[float] | np.ndarray) -> None:
        """Set the ``tags``, ``top`` (class probabilities) or ``embed`` (features) vector."""
        if name not in VECTORS:
            raise BadRequest(f"unknown vector {name!r} (vectors: {', '.join(VECTORS)})")
        v = np.asarray(values, np.float32).reshape(-1)
        if v.size == 0 or not np.all(np.isfinite(v)):
            raise BadRequest(f"vector {name!r} must be non-empty and finite")
        self._vectors[name] = v

    def update(self, frames: Mapping[str, np.ndarray]) -> None:
        """Take the latest frame of some layers: layer -> (*shape) or (n_frames, *shape) (last used).

        Each layer is normalised by an envelope of its range (instant attack, slow release,
        never narrower than a quarter of its calibrated range), then every neuron's shown
        value follows with attack/decay smoothing.
        """
        for name, value in frames.items():
            try:
                k = self.layout.layer_names.index(name)
            except ValueError:
                continue  # streams may carry more than the layout shows
            a = np.asarray(value, np.float32)
            size = self._sizes[k]
            if a.size != size:
                if a.ndim == 0 or a.shape[0] == 0 or a[-1].size != size:
                    raise BadRequest(f"frame of layer {name!r} has shape {a.shape}, expected {self.ear.layers[k].shape}")
                a = a[-1]
            a = a.reshape(-1)
            lo, hi = float(a.min()), float(a.max())
            if not self._seen[k]:
                self._lo[k], self._hi[k], self._seen[k] = lo, hi, True
            else:
                r = self.envelope_release
                self._lo[k] = lo if lo < self._lo[k] else self._lo[k] + (lo - self._lo[k]) * r
                self._hi[k] = hi if hi > self._hi[k] else self._hi[k] + (hi - self._hi[k]) * r
            span = max(float(self._hi[k] - self._lo[k]), float(self._floor[k]))
            s, e = self._offsets[k], self._offsets[k + 1]
            self._target[s:e] = np.clip((a - self._lo[k]) / span, 0.0, 1.0)
            shown = self._shown[s:e]
            t = self._target[s:e]
            shown += (t - shown) * np.where(t > shown, self.attack, self.decay)

    def set_time(self, seconds: float | None) -> None:
        """Pin the animation clock (offline renders, reproducible snapshots); None follows real time."""
        self._time_override = seconds

    # ------------------------------------------------------------------------------- drawing

    def _time(self) -> float:
        return self._time_override if self._time_override is not None else time.perf_counter() - self._t0

    def _steering(self) -> np.ndarray:
        """The vector that steers the hallucination: top, else tags, else the ear's output layer."""
        for name in ("top", "tags"):
            if name in self._vectors:
                return self._vectors[name]
        out = self.ear.output_layer
        if out and out in self.layout.layer_names:
            k = self.layout.layer_names.index(out)
            return self._shown[self._offsets[k] : self._offsets[k + 1]]
        return self._layer_energy()

    def _layer_energy(self) -> np.ndarray:
        """(k,) mean shown activation of each layer."""
        return np.add.reduceat(self._shown, self._offsets[:-1]) / np.maximum(self._sizes, 1)

    def _projection(self, length: int) -> np.ndarray:
        """(8, length) fixed random projection of a steering vector to the CPPN's latent."""
        if length not in self._projections:
            rng = np.random.default_rng([self._seed, length])
            self._projections[length] = rng.standard_normal((N_LATENT, length)).astype(np.float32)
        return self._projections[length]

    @staticmethod
    def _cppn_weights(seed: int) -> dict[str, np.ndarray]:
        """Random CPPN weights (fixed per seed): 4 inputs + 8 latents -> 16 -> 16 -> 3."""
        rng = np.random.default_rng([seed, 7])
        return {
            "w1": rng.normal(0, 1.0, (16, 4)).astype(np.float32),
            "w1z": rng.normal(0, 1.0, (16, N_LATENT)).astype(np.float32),
            "w2": rng.normal(0, 2.0 / np.sqrt(16), (16, 16)).astype(np.float32),
            "w3": rng.normal(0, 2.5 / np.sqrt(16), (4, 16)).astype(np.float32),
        }

    def _set(self, program: moderngl.Program, name: str, value: object) -> None:
        # Compilers drop unused uniforms; a live-edited shader may not use every one.
        if name in program:
            program[name].value = value  # type: ignore[union-attr]

    def _draw_layout(self) -> None:
        self._act_pad[: self.layout.n] = self._shown
        self._act_tex.write(self._act_pad.tobytes())
        self._ids_tex.use(0)
        self._act_tex.use(1)
        self._cmap_tex.use(2)
        neurons = self._programs["neurons"]
        for name, value in (("u_ids", 0), ("u_activations", 1), ("u_colormap", 2)):
            self._set(neurons, name, value)
        self._set(neurons, "u_background", BACKGROUND)
        self._set(neurons, "u_edge_color", EDGE_COLOR)
        self._set(neurons, "u_floor", 0.35)
        self._vao_neurons.render(moderngl.TRIANGLES, vertices=3)
        if self._n_markers:
            markers = self._programs["markers"]
            self._set(markers, "u_scale", self._scale)
            self._set(markers, "u_radius", self._marker_radius)
            self._set(markers, "u_highlight", HIGHLIGHT)
            self._vao_markers.render(moderngl.TRIANGLES, vertices=6 * self._n_markers)

    def _draw_hallucination(self) -> None:
        v = self._steering().astype(np.float32)
        energy = float(np.clip(v.max(initial=0.0), 0.0, 1.0)) if v.size else 0.0
        # Scale-free steering: the shape of the distribution matters, not its level.
        unit = v / (np.linalg.norm(v) + 1e-6)
        z = np.tanh(self._projection(v.size) @ unit)
        self._latent += (z - self._latent) * 0.2  # glide, so frame-to-frame jumps stay smooth
        program = self._programs["hallucination"]
        w = self._cppn
        self._set(program, "u_w1", _mat4_blocks(w["w1"]))
        self._set(program, "u_b1", _vec4s(w["w1z"] @ self._latent))
        self._set(program, "u_w2", _mat4_blocks(w["w2"]))
        self._set(program, "u_w3", _mat4_blocks(w["w3"]))
        self._set(program, "u_zoom", 1.2 + 0.8 * float(self._latent[-1]))
        self._set(program, "u_time", self._time())
        self._set(program, "u_aspect", self.width / self.height)
        self._set(program, "u_energy", energy)
        # The CPPN is smooth: render it small and let linear filtering scale it up.
        self._small_fbo.use()
        self._vao_halluc.render(moderngl.TRIANGLES, vertices=3)
        self.fbo.use()
        self._small_tex.use(1)
        self._set(self._programs["blit"], "u_image", 1)
        self._vao_blit.render(moderngl.TRIANGLES, vertices=3)

    def _features_now(self) -> np.ndarray:
        """(10,) features in [0, 1]: embed (normalised by a running range) or layer energies."""
        raw = self._vectors.get("embed")
        if raw is None:
            raw = self._layer_energy().astype(np.float32)
        v = np.resize(raw, N_PARAMS).astype(np.float32)  # repeat short vectors, cut long ones
        if self._feature_lo.shape != v.shape:
            self._feature_lo, self._feature_hi = v.copy(), v.copy()
        # Running range with a slow release, so each feature uses the whole parameter span...
        self._feature_lo = np.minimum(self._feature_lo + (v - self._feature_lo) * 0.002, v)
        self._feature_hi = np.maximum(self._feature_hi + (v - self._feature_hi) * 0.002, v)
        span = self._feature_hi - self._feature_lo
        # ... except while a feature has not moved yet: then squash its raw value instead.
        norm = np.where(
            span > 1e-3, (v - self._feature_lo) / np.maximum(span, 1e-3), 0.5 + 0.5 * np.tanh(v)
        ).astype(np.float32)
        self._features += (norm - self._features) * 0.25
        return np.clip(self._features, 0.0, 1.0)

    def _draw_features(self) -> None:
        params = self._features_now()[self.permutation]
        program = self._programs["features"]
        self._set(program, "u_params", tuple(float(x) for x in params))
        self._set(program, "u_time", self._time())
        self._set(program, "u_aspect", self.width / self.height)
        self._vao_features.render(moderngl.TRIANGLES, vertices=3)

    def render(self) -> None:
        """Draw the current view into the offscreen framebuffer (no read-back)."""
        # Another renderer (an offline video, a test) may have made its own context current.
        with self._gl_lock, self.ctx:
            self._render()

    def _render(self) -> None:
        self._check_shaders()
        self._upload()
        self.fbo.use()
        # No clear: every view draws a full-screen triangle that writes every pixel.
        if self._view == "layout":
            self._draw_layout()
        elif self._view == "hallucination":
            self._draw_hallucination()
        else:
            self._draw_features()

    def draw(self) -> np.ndarray:
        """Render the current view; returns (height, width, 3) uint8, top row first."""
        with self._gl_lock, self.ctx:
            self._render()
            data = self.fbo.read(components=3, alignment=1)
            if self._window:
                gl.present(self.ctx, self.fbo)
        image = np.frombuffer(data, np.uint8).reshape(self.height, self.width, 3)[::-1]
        with self._lock:
            self._last = np.ascontiguousarray(image)
        return self._last

    def last_frame(self) -> np.ndarray:
        """The last image :meth:`draw` returned (any thread)."""
        with self._lock:
            return self._last

    def jpeg(self, quality: int = 80) -> bytes:
        """The last drawn frame as JPEG bytes (any thread; no GL)."""
        buf = io.BytesIO()
        Image.fromarray(self.last_frame()).save(buf, format="JPEG", quality=quality)
        return buf.getvalue()

    def snapshot(self, path: str | Path) -> Path:
        """Draw and write a PNG; returns its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.draw()).save(path)
        return path

    def layout_dict(self) -> dict[str, object]:
        """The layout as the web page sees it: positions as fractions of the image (y down)."""
        p = self.layout.positions
        fx = 0.5 + 0.5 * p[:, 0] * self._scale[0]
        fy = 0.5 - 0.5 * p[:, 1] * self._scale[1]
        per_channel = np.array([layer.size // layer.channels for layer in self.ear.layers])
        return {
            "ear": self.ear.name,
            "width": self.width,
            "height": self.height,
            "layers": list(self.layout.layer_names),
            "shapes": [list(layer.shape) for layer in self.ear.layers],
            "x": np.round(fx, 4).tolist(),
            "y": np.round(fy, 4).tolist(),
            "layer": self.layout.layer.tolist(),
            "channel": (self.layout.unit // per_channel[self.layout.layer]).tolist(),
            "selection": {"layer": self._selection[0], "channels": self._selection[1]},
        }

    def pixel_of(self, neuron: int) -> tuple[int, int]:
        """(x, y) pixel of a neuron's centre in drawn images (y down)."""
        p = self.layout.positions[neuron]
        x = (0.5 + 0.5 * p[0] * self._scale[0]) * self.width
        y = (0.5 - 0.5 * p[1] * self._scale[1]) * self.height
        return int(np.clip(x, 0, self.width - 1)), int(np.clip(y, 0, self.height - 1))

    def close(self) -> None:
        """Release every GL object and the context (and window)."""
        if getattr(self, "ctx", None) is None:
            return
        with self._gl_lock:
            gl.release_context(self.ctx)
            self.ctx = None  # type: ignore[assignment]

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# Offline: a video of a file; benchmark


def _ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        raise EarsightError("ffmpeg not found (Debian: apt install ffmpeg)")
    return path


def read_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode any file ffmpeg reads to mono float32 at ``sample_rate``: (samples,)."""
    path = Path(path)
    if not path.is_file():
        raise EarsightError(f"no audio file {path}")
    cmd = [_ffmpeg(), "-v", "error", "-nostdin", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise EarsightError(f"ffmpeg could not read {path}: {proc.stderr.decode(errors='replace').strip()}")
    return np.frombuffer(proc.stdout, np.float32).copy()


def render_file(
    audio_path: str | Path,
    ear_name: str,
    out_path: str | Path,
    fps: float = 30,
    size: tuple[int, int] = (1280, 720),
    *,
    view: str = "layout",
    colormap: str = "magma",
    progress: bool = True,
) -> Path:
    """Render a video of what ``ear_name`` hears in ``audio_path``, with the file's audio muxed in.

    Every ear frame is fed to the renderer in order (so smoothing behaves as live); each video
    frame shows the ear frame whose input weighs most at that moment (the ear's declared
    latency compensated). Frames are piped raw to ffmpeg (H.264 + AAC). Returns ``out_path``.
    """
    from .ears import registry

    ear = registry.load(ear_name)
    audio = read_audio(audio_path, ear.sample_rate)
    if audio.size == 0:
        raise EarsightError(f"{audio_path} holds no audio")
    duration = audio.size / ear.sample_rate
    frames = ear.analyse(audio)
    n_ear = min((v.shape[0] for v in frames.values()), default=0)
    n_video = max(1, int(np.ceil(duration * fps - 1e-9)))
    width, height = (int(size[0]) // 2 * 2, int(size[1]) // 2 * 2)  # H.264 wants even sizes
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        _ffmpeg(), "-v", "error", "-y", "-nostdin",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
        "-i", str(audio_path),
        "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "160k",
        "-t", f"{duration:.6f}",
        str(out_path),
    ]  # fmt: skip
    renderer = Renderer(ear, get_layout(ear, progress=progress), width=width, height=height)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        renderer.view = view
        renderer.colormap = colormap
        fed = 0
        for k in tqdm(range(n_video), desc="render", unit="frame", disable=not progress):
            t = k / fps
            renderer.set_time(t)
            # The frame whose input weighs most now: latency samples after t, completed at (j+1)*hop.
            upto = min(n_ear, int((t * ear.sample_rate + ear.latency) // ear.hop))
            while fed < upto:
                renderer.update({name: v[fed] for name, v in frames.items()})
                fed += 1
            proc.stdin.write(renderer.draw().tobytes())
        proc.stdin.close()
        err = proc.stderr.read() if proc.stderr else b""
        if proc.wait() != 0:
            raise EarsightError(f"ffmpeg failed: {err.decode(errors='replace').strip()}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        renderer.close()
    return out_path


def bench_render(ear: Ear, *, size: tuple[int, int] = (1280, 720), seconds: float = 3.0) -> dict[str, float]:
    """Frames per second at ``size`` for each view, every neuron drawn, with an update and a
    read-back per frame (what the live loop does); ``*_render_fps`` without the read-back."""
    layout = get_layout(ear, progress=False)
    frames = ear.analyse(probe_signal(ear.sample_rate, 2.0))
    n = min(v.shape[0] for v in frames.values())
    result: dict[str, float] = {"neurons": float(layout.n)}
    with Renderer(ear, layout, width=size[0], height=size[1]) as renderer:
        renderer.select(ear.layers[-1].name, [0])
        for view in VIEWS:
            renderer.view = view
            renderer.draw()  # compile and warm up outside the clock
            count = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds / 2:
                renderer.update({name: v[count % n] for name, v in frames.items()})
                renderer.draw()
                count += 1
            result[f"{view}_fps"] = count / (time.perf_counter() - t0)
            count = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds / 2:
                renderer.render()
                renderer.ctx.finish()
                count += 1
            result[f"{view}_render_fps"] = count / (time.perf_counter() - t0)
    return result


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"size must look like 1280x720, not {text!r}") from err
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``earsight render FILE --out video.mp4``."""
    parser.add_argument("file", type=Path, help="audio file (anything ffmpeg reads)")
    parser.add_argument("--out", type=Path, default=None, help="video to write (default: FILE.mp4)")
    parser.add_argument("--ear", default=None, help="ear name (default: the registry's default)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--size", type=_size, default=(1280, 720), help="WxH (default 1280x720)")
    parser.add_argument("--view", choices=VIEWS, default="layout")
    parser.add_argument("--colormap", choices=COLORMAPS, default="magma")
    parser.add_argument("--bench", action="store_true", help="print the renderer's frame rates for the ear instead")


def run(args: argparse.Namespace) -> int:
    """``earsight render FILE``: write the video (or, with --bench, measure frame rates)."""
    from .ears import registry

    ear_name = args.ear or registry.DEFAULT
    if args.bench:
        for key, value in bench_render(registry.load(ear_name), size=args.size).items():
            print(f"{key}: {value:.1f}")
        return 0
    out = args.out or args.file.with_suffix(".mp4")
    path = render_file(args.file, ear_name, out, fps=args.fps, size=args.size, view=args.view, colormap=args.colormap)
    print(f"wrote {path}")
    return 0
