"""The renderer: an ear's activations drawn with moderngl, headless (EGL) or in a window.

It composes a :class:`~earsight.render.state.RenderState` (what to draw, pure numpy), the
:class:`~earsight.render.gl.GLObjects` of its own context, and the draw functions of
:mod:`earsight.render.views`.

Any thread may call :meth:`Renderer.draw` (calls are serialised and each makes the renderer's
context current, so several renderers share a process); ``select``, ``set_vector``,
``shuffle``, ``view`` and ``colormap`` only stage changes, and :meth:`Renderer.jpeg` only
encodes the last drawn frame, so the web view and the OSC server may call them any time.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import simplejpeg
from PIL import Image

from ..ears.base import Ear
from ..layout import Layout, get_layout
from ..paths import write_atomically
from . import context, views
from .gl import GLObjects
from .overlay import overlay_image
from .state import RenderState


class Renderer:
    """Draws an ear's activations; ``update`` takes the latest frame of each layer, ``draw``
    renders the current view and returns it as an (height, width, 3) uint8 image, top row first.
    """

    max_edges = 200_000
    """Edges drawn at most (a random subset); they are drawn once per layout, not per frame."""
    halluc_scale = 0.15
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
        layout = layout if layout is not None else get_layout(ear, progress=False)
        self.state = RenderState(ear, layout, width=width, height=height, seed=seed)
        self.ear = ear
        self.layout = layout
        self.width, self.height = self.state.width, self.state.height
        self._lock = threading.Lock()  # guards state shared with other threads (selection, last frame)
        self._gl_lock = threading.RLock()  # one GL user at a time; each makes our context current
        self._rgba = np.zeros((self.height, self.width, 4), np.uint8)  # the last frame, top row first
        self._last = self._rgba[:, :, :3]
        self._dirty_selection = False
        self._dirty_colormap = False
        self._dirty_overlay = True
        self._jpeg_cache: tuple[tuple[int, int], bytes] | None = None
        self._frame_no = 0

        self.ctx = context.create_context(window=window, size=(self.width, self.height))
        self._window = context.window_of(self.ctx) is not None
        self.gl = GLObjects(self.ctx, self.state, max_edges=self.max_edges, halluc_scale=self.halluc_scale)
        self.reload_shaders(strict=True)

    # ------------------------------------------------------------------------------- shaders

    @property
    def shader_error(self) -> str | None:
        """Why the last reload kept a previous program (None when every program compiled)."""
        return self.gl.shader_error

    def reload_shaders(self, *, strict: bool = False) -> list[str]:
        """Recompile every program from ``shaders/``; returns the names reloaded.

        A program that fails to compile keeps its previous version (``shader_error`` says why),
        so a typo while live-editing never blanks the show. ``strict`` raises instead (start-up).
        """
        with self._gl_lock, self.ctx:
            return self._reload_shaders(strict)

    def _reload_shaders(self, strict: bool) -> list[str]:
        fresh = self.gl.reload(strict)
        views.bake(self.gl, self.state)
        return fresh

    # ------------------------------------------------------------------------------- state

    @property
    def view(self) -> str:
        return self.state.view

    @view.setter
    def view(self, name: str) -> None:
        self.state.view = name  # validates (BadRequest)

    @property
    def colormap(self) -> str:
        return self.state.colormap

    @colormap.setter
    def colormap(self, name: str) -> None:
        with self._lock:  # validated now; the upload happens on the GL thread
            self.state.colormap = name
            self._dirty_colormap = True

    @property
    def mode(self) -> str:
        """``change`` (each neuron's deviation from its running level) or ``raw`` (its level)."""
        return self.state.mode

    @mode.setter
    def mode(self, name: str) -> None:
        with self._lock:
            self.state.mode = name  # validates (BadRequest)
            self._dirty_overlay = True

    @property
    def labels(self) -> bool:
        """Whether layer labels and the legend are drawn over the layout view."""
        return self.state.labels

    @labels.setter
    def labels(self, on: bool) -> None:
        with self._lock:
            self.state.labels = bool(on)
            self._dirty_overlay = True

    def _number(self, name: str, value: float) -> None:
        with self._lock:
            self.state.set_number(name, value)  # validates (BadRequest)
            self._dirty_overlay = True  # the legend names the gain and tau

    tau = property(lambda self: self.state.tau, lambda self, v: self._number("tau", v),
                   doc="Seconds: time constant of each neuron's running level and spread (change mode).")
    gain = property(lambda self: self.state.gain, lambda self, v: self._number("gain", v),
                    doc="Light per deviation (change mode) or per level (raw mode).")
    decay = property(lambda self: self.state.decay, lambda self, v: self._number("decay", v),
                     doc="Seconds: time constant of the light's fade.")
    glow = property(lambda self: self.state.glow_strength, lambda self, v: self._number("glow", v),
                    doc="Strength of the glow around lit neurons (0: none).")

    @property
    def selection(self) -> tuple[str, list[int]]:
        """(layer, channels) last selected; ("", []) when nothing is."""
        return self.state.selection

    @property
    def permutation(self) -> np.ndarray:
        """(10,) which feature drives which parameter of the features view."""
        return self.state.permutation

    @property
    def radius_px(self) -> float:
        """A neuron's radius in pixels."""
        return self.state.fit.radius_px

    def select(self, layer: str, channels: list[int]) -> None:
        """Highlight ``channels`` (indices along the layer's first axis) of ``layer``; [] clears.

        Safe from any thread (the web view's, the OSC server's): the markers are uploaded by
        the next draw, on the renderer's own thread.
        """
        with self._lock:
            self.state.select(layer, channels)  # raises BadRequest for a layer or channel the ear lacks
            self._dirty_selection = True

    def selected_neurons(self) -> np.ndarray:
        """(s,) neuron indices (into the layout) currently highlighted."""
        return self.state.selected.copy()

    def shuffle(self, seed: int | None = None) -> np.ndarray:
        """Redraw which feature drives which visual parameter (one of 10! mappings); returns it."""
        return self.state.shuffle(seed)

    def set_vector(self, name: str, values: list[float] | np.ndarray) -> None:
        """Set the ``tags``, ``top`` (class probabilities) or ``embed`` (features) vector."""
        self.state.set_vector(name, values)

    def update(self, frames: Mapping[str, np.ndarray], dt: float | None = None) -> None:
        """Take the latest frame of some layers: layer -> (*shape) or (n_frames, *shape) (last used).

        ``dt``: seconds since the last update on the frames' clock (None: the wall clock). See
        :meth:`RenderState.update` for how each neuron's light follows.
        """
        with self._lock:  # a mode switch from another thread resets what this reads
            self.state.update(frames, dt)

    def set_time(self, seconds: float | None) -> None:
        """Pin the animation clock (offline renders, reproducible snapshots); None follows real time."""
        self.state.set_time(seconds)

    # ------------------------------------------------------------------------------- drawing

    def _upload(self) -> None:
        """Apply staged selection, colour-map and overlay changes (GL thread only)."""
        with self._lock:
            if self._dirty_colormap:  # neurons and glow take the map's colours on the CPU, each frame
                self._dirty_colormap = False
                self._dirty_overlay = True
            if self._dirty_overlay:
                self.gl.upload_overlay(*overlay_image(self.state))
                self._dirty_overlay = False
            if not self._dirty_selection:
                return
            selected = self.state.selected
            self._dirty_selection = False
        self.gl.upload_selection(self.state.fit.centred(self.layout.positions[selected]))

    def render(self) -> None:
        """Draw the current view into the offscreen framebuffer (no read-back)."""
        # Another renderer (an offline video, a test) may have made its own context current.
        with self._gl_lock, self.ctx:
            self._render()

    def _render(self) -> None:
        if self.gl.files_changed():
            self._reload_shaders(False)  # already inside our context: entering it again would nest
        self._upload()
        self.gl.fbo.use()
        views.DRAW[self.state.view](self.gl, self.state)

    def draw(self) -> np.ndarray:
        """Render the current view; returns (height, width, 3) uint8, top row first (a view of
        the RGBA frame: four bytes a pixel are read back and encoded without conversion)."""
        with self._gl_lock, self.ctx:
            self._render()
            context.finish(self.ctx)  # the wait for the rasteriser, with the GIL free
            data = self.gl.fbo.read(components=4, alignment=1)
            if self._window:
                context.present(self.ctx, self.gl.fbo)
        rgba = np.ascontiguousarray(np.frombuffer(data, np.uint8).reshape(self.height, self.width, 4)[::-1])
        with self._lock:
            self._rgba = rgba
            self._last = rgba[:, :, :3]
            self._frame_no += 1
        return self._last

    def last_frame(self) -> np.ndarray:
        """The last image :meth:`draw` returned (any thread)."""
        with self._lock:
            return self._last

    def jpeg(self, quality: int = 80) -> bytes:
        """The last drawn frame as JPEG bytes (any thread; no GL), encoded once per frame and quality
        however many viewers ask."""
        with self._lock:
            frame, key = self._rgba, (self._frame_no, quality)
        cached = self._jpeg_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        # simplejpeg lets go of the GIL while it encodes: the render thread draws on meanwhile.
        data = simplejpeg.encode_jpeg(frame, quality=quality, colorspace="RGBX", colorsubsampling="420")
        self._jpeg_cache = (key, data)  # one assignment: another thread sees the old pair or the new
        return data

    def snapshot(self, path: str | Path) -> Path:
        """Draw and write a PNG; returns its path."""
        buf = io.BytesIO()
        Image.fromarray(self.draw()).save(buf, format="PNG")
        return write_atomically(Path(path), lambda tmp: tmp.write_bytes(buf.getvalue()))

    def layout_dict(self) -> dict[str, object]:
        """The layout as the web page sees it: positions as fractions of the image (y down)."""
        with self._lock:  # a consistent selection
            return self.state.layout_dict()

    def pixel_of(self, neuron: int) -> tuple[int, int]:
        """(x, y) pixel of a neuron's centre in drawn images (y down)."""
        return self.state.pixel_of(neuron)

    def close(self) -> None:
        """Release every GL object and the context (and window)."""
        if getattr(self, "ctx", None) is None:
            return
        with self._gl_lock:
            context.release_context(self.ctx)
            self.ctx = None  # type: ignore[assignment]

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
