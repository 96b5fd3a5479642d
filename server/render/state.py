"""What the renderer computes from frames before it draws: pure numpy, no GL.

:class:`RenderState` holds every number the shaders are fed: each neuron's shown value
(normalised per layer, attack/decay smoothed), the selection, the ``tags``/``top``/``embed``
vectors, the hallucination's steering and CPPN weights, the features view's mapping, and
where the layout lands on screen (:class:`ScreenFit`). It can be built and tested without a
GL context; :class:`earsight.render.Renderer` wraps it with the GL objects that draw it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..ears.base import Ear
from ..errors import BadRequest, EarsightError
from ..layout import Layout, screen
from . import normalise
from .glow import Glow
from .normalise import MODES, RunningNorm, light, smooth

VIEWS = ("layout", "hallucination", "features")
COLORMAPS = ("magma", "viridis", "inferno", "gray")
VECTORS = ("tags", "top", "embed")
N_PARAMS = 10
"""Parameters of the features view (the kaleidoscope)."""
N_LATENT = 8
"""Latent inputs of the hallucination's CPPN."""
BACKGROUND = (0.02, 0.02, 0.03)
EDGE_COLOR = (0.035, 0.04, 0.055)
HIGHLIGHT = (0.1, 1.0, 0.85)
PATH_STRENGTH = 0.8
"""How bright an edge between two fully lit neurons shines (``u_path_strength`` of neurons.glsl)."""
SILENT_BRIGHTNESS = 0.35
"""Brightness of a silent neuron in ``raw`` mode, so the structure stays visible (:func:`neuron_colors`' floor)."""
DARK_BRIGHTNESS = 0.12
"""... and in ``change`` mode, where a silent neuron is one that did not change: the picture rests dark."""
TAU = 1.0
"""Seconds: the default time constant of each neuron's running level and spread (``change`` mode)."""
DECAY = 0.25
"""Seconds: the default time constant of the light's fade."""
GLOW = 1.5
"""The default strength of the glow around lit neurons (:mod:`.glow`)."""
LIMITS = {"tau": (0.05, 600.0), "gain": (0.01, 100.0), "decay": (0.0, 30.0), "glow": (0.0, 4.0)}
"""Allowed range of each numeric picture setting."""


def colormap_texture_data(name: str) -> np.ndarray:
    """(256, 3) uint8 colours of matplotlib's colour map ``name``."""
    import matplotlib

    if name not in COLORMAPS:
        raise BadRequest(f"unknown colour map {name!r} (colour maps: {', '.join(COLORMAPS)})")
    rgba = matplotlib.colormaps[name](np.linspace(0.0, 1.0, 256))
    return np.ascontiguousarray((rgba[:, :3] * 255).round().astype(np.uint8))


def neuron_colors(values: np.ndarray, table: np.ndarray, floor: float = SILENT_BRIGHTNESS) -> np.ndarray:
    """(n,) shown values in [0, 1] and a (256, 3) uint8 colour map -> (n, 3) float RGB in [0, 1].

    The colour at a neuron's centre, as neurons.glsl computes it: the map read (linearly
    interpolated, clamped at its ends) from 12 % up, since most maps start near black, and
    dimmed to ``floor`` for a silent neuron.
    """
    a = np.clip(np.asarray(values, np.float64), 0.0, 1.0)
    texel = (0.12 + 0.88 * a) * table.shape[0] - 0.5  # texture coordinate -> texel centres
    i0 = np.clip(np.floor(texel), 0, table.shape[0] - 1).astype(np.int64)
    i1 = np.clip(i0 + 1, 0, table.shape[0] - 1)
    w = np.clip(texel - i0, 0.0, 1.0)[:, None]
    colours = ((1.0 - w) * table[i0] + w * table[i1]) / 255.0
    return colours * (floor + (1.0 - floor) * a)[:, None]


def cppn_weights(seed: int) -> dict[str, np.ndarray]:
    """Random CPPN weights (fixed per seed): 4 inputs + 8 latents -> 16 -> 16 -> 3 (+1 unused).

    ``w1`` (16, 4), ``w1z`` (16, 8), ``w2`` (16, 16), ``w3`` (4, 16), all float32.
    """
    rng = np.random.default_rng([seed, 7])
    return {
        "w1": rng.normal(0, 1.0, (16, 4)).astype(np.float32),
        "w1z": rng.normal(0, 1.0, (16, N_LATENT)).astype(np.float32),
        "w2": rng.normal(0, 2.0 / np.sqrt(16), (16, 16)).astype(np.float32),
        "w3": rng.normal(0, 2.5 / np.sqrt(16), (4, 16)).astype(np.float32),
    }


def channel_units(ear: Ear, layer: str, channels: list[int]) -> np.ndarray:
    """Units (flat indices into ``layer``'s frame) of ``channels``: (len(channels) * per_channel,).

    A channel is an index along the layer's first axis; raises BadRequest for an unknown
    layer or a channel it lacks.
    """
    spec = ear.layer(layer)  # raises BadRequest for an unknown layer
    bad = [c for c in channels if not 0 <= c < spec.channels]
    if bad:
        raise BadRequest(f"layer {layer!r} has channels 0..{spec.channels - 1}, not {bad}")
    per_channel = spec.size // spec.channels
    return (np.asarray(channels, np.int64)[:, None] * per_channel + np.arange(per_channel)).reshape(-1)


@dataclass(frozen=True)
class ScreenFit:
    """Layout space -> clip space: the whole layout visible, filling the picture (:func:`~earsight.layout.screen.fit`)."""

    scale: tuple[float, float]
    """Layout units -> clip units, (x, y)."""
    centre: tuple[float, float]
    """The layout point drawn at the picture's centre."""
    radius_px: float
    """A neuron's radius in pixels, from the area each neuron gets on screen."""
    radius: tuple[float, float]
    """... in clip units."""
    marker_radius: tuple[float, float]
    """A selection marker's radius in clip units."""

    @classmethod
    def of(cls, positions: np.ndarray, width: int, height: int) -> ScreenFit:
        """Fit (n, 2) layout positions into a ``width`` x ``height`` picture."""
        p = positions
        half_w, half_h = width / 2, height / 2
        f = screen.fit(p, width, height)  # the layout spreads neurons to their own pixels by it
        # Radius from the area each neuron gets on screen, so a big ear stays legible.
        extent = np.ptp(p, axis=0) if p.size else np.zeros(2)
        area = float(extent[0] * f.sx * half_w * extent[1] * f.sy * half_h)
        radius_px = float(np.clip(0.6 * np.sqrt(area / max(p.shape[0], 1)), 2.0, 10.0))
        marker_px = max(2.2 * radius_px, 6.0)
        return cls(
            scale=(f.sx, f.sy),
            centre=(f.cx, f.cy),
            radius_px=radius_px,
            radius=(radius_px / half_w, radius_px / half_h),
            marker_radius=(marker_px / half_w, marker_px / half_h),
        )

    def centred(self, positions: np.ndarray) -> np.ndarray:
        """(n, 2) layout positions less the centre, float32: what the GL buffers hold (the
        shaders multiply by ``scale``)."""
        return np.ascontiguousarray(positions - np.array(self.centre), np.float32).reshape(-1, 2)

    def fractions(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, 2) layout positions -> x, y as fractions of the picture, (n,) each, y down."""
        return screen.fractions(positions, screen.Fit(*self.scale, *self.centre))


class RenderState:
    """Everything drawn, computed from frames: per-neuron values, selection, vectors, mappings.

    Not thread-safe by itself: :class:`~earsight.render.Renderer` serialises the calls that
    come from other threads.
    """

    envelope_release = 0.02
    """How fast a layer's range shrinks after a loud passage, per update (``raw`` mode)."""

    def __init__(self, ear: Ear, layout: Layout, *, width: int = 1280, height: int = 720, seed: int = 0) -> None:
        if tuple(layout.layer_names) != tuple(ear.layer_names):
            raise EarsightError(f"layout layers {layout.layer_names} do not match ear {ear.name!r}")
        self.ear = ear
        self.layout = layout
        self.width, self.height = int(width), int(height)
        self.seed = seed
        self.fit = ScreenFit.of(layout.positions, self.width, self.height)
        self.view = "layout"
        self.colormap = "magma"
        self._mode = "change"
        self.tau = TAU
        self.gain = 1.0
        self.decay = DECAY
        self.glow_strength = GLOW
        self.labels = True
        """Layer labels and the legend drawn over the layout view."""

        self.offsets = layout.offsets()
        """(k + 1,) where each layer's neurons start in the layout, and the total."""
        self.sizes = np.array([layer.size for layer in ear.layers])
        n, k = layout.n, len(ear.layers)
        self.target = np.zeros(n, np.float32)
        """(n,) each neuron's light in the last frame, in [0, 1]."""
        self.shown = np.zeros(n, np.float32)
        """(n,) what is drawn: ``target`` smoothed (fast rise, ``decay`` fall), in [0, 1]."""
        self._lo = np.zeros(k, np.float32)
        self._hi = np.zeros(k, np.float32)
        self._seen = np.zeros(k, bool)
        ranges = layout.layer_range.astype(np.float32)
        span = np.maximum(ranges[:, 1] - ranges[:, 0], 1e-6)
        # A layer's range never shrinks below a quarter of what the test signal spanned, so
        # silence shows as calm instead of amplified noise.
        self._floor = 0.25 * span
        self.norm = RunningNorm(np.repeat(normalise.SPREAD_FLOOR * span, self.sizes))
        fx, fy = self.fit.fractions(layout.positions)
        self.glow = Glow(fx, fy, self.width, self.height, spacing_px=self.fit.radius_px / 0.6)
        self._last_update: float | None = None
        self._lut_key: tuple[str, float, float] | None = None
        self._lut = (np.zeros((256, 4), np.uint8), np.zeros((256, 4), np.uint8))

        self.selection: tuple[str, list[int]] = ("", [])
        """(layer, channels) last selected; ("", []) when nothing is."""
        self.selected = np.zeros(0, np.int64)
        """(s,) layout indices of the selected neurons."""

        self.vectors: dict[str, np.ndarray] = {}
        self.cppn = cppn_weights(seed)
        self.latent = np.zeros(N_LATENT, np.float32)
        self._projections: dict[int, np.ndarray] = {}
        self._rng = np.random.default_rng(seed)
        self.permutation = np.arange(N_PARAMS)
        """Which feature drives which parameter of the features view: params = features[permutation]."""
        self.shuffle(seed)
        self._features = np.zeros(N_PARAMS, np.float32)
        self._feature_lo = np.zeros(0, np.float32)
        self._feature_hi = np.zeros(0, np.float32)

        self._t0 = time.perf_counter()
        self._time_override: float | None = None

    # ------------------------------------------------------------------------ settings

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
        if name not in COLORMAPS:
            raise BadRequest(f"unknown colour map {name!r} (colour maps: {', '.join(COLORMAPS)})")
        self._colormap = name
        self.table = colormap_texture_data(name)
        """(256, 3) uint8: the colour map's colours."""

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, name: str) -> None:
        if name not in MODES:
            raise BadRequest(f"unknown picture mode {name!r} (modes: {', '.join(MODES)})")
        self._mode = name
        # Each mode starts afresh: its running levels would be stale after the other's turn.
        self.norm.reset()
        self._seen[:] = False

    def set_number(self, name: str, value: float) -> None:
        """Set ``tau``, ``gain``, ``decay`` or ``glow`` (seconds, factors) within :data:`LIMITS`."""
        if name not in LIMITS:
            raise BadRequest(f"unknown picture setting {name!r} (settings: {', '.join(LIMITS)})")
        lo, hi = LIMITS[name]
        v = float(value)
        if not lo <= v <= hi:  # also refuses nan
            raise BadRequest(f"{name} must be within [{lo:g}, {hi:g}], got {v:g}")
        setattr(self, "glow_strength" if name == "glow" else name, v)

    def floor_brightness(self) -> float:
        """Brightness of a neuron at rest (:func:`neuron_colors`' floor)."""
        return DARK_BRIGHTNESS if self.mode == "change" else SILENT_BRIGHTNESS

    def time(self) -> float:
        """Seconds on the animation clock."""
        return self._time_override if self._time_override is not None else time.perf_counter() - self._t0

    def set_time(self, seconds: float | None) -> None:
        """Pin the animation clock (offline renders, reproducible snapshots); None follows real time."""
        self._time_override = seconds

    # ------------------------------------------------------------------------ per-neuron values

    def update(self, frames: Mapping[str, np.ndarray], dt: float | None = None) -> None:
        """Take the latest frame of some layers: layer -> (*shape) or (n_frames, *shape) (last used).

        ``dt``: seconds since the previous update on the frames' clock (offline renders pass
        the ear's hop); None measures it on the wall clock (the live picture), at most a second.
        In ``change`` mode each neuron's light is its deviation from its running level in
        spreads (:mod:`.normalise`); in ``raw`` mode each layer is scaled by an envelope of its
        range (instant attack, slow release, never narrower than a quarter of its calibrated
        range). Either way the shown value then rises fast and fades with ``decay``.
        """
        now = time.perf_counter()
        if dt is None:
            dt = 0.0 if self._last_update is None else min(now - self._last_update, 1.0)
        self._last_update = now
        dt = max(float(dt), 0.0)
        for name, value in frames.items():
            try:
                k = self.layout.layer_names.index(name)
            except ValueError:
                continue  # streams may carry more than the layout shows
            a = np.asarray(value, np.float32)
            size = self.sizes[k]
            if a.size != size:
                if a.ndim == 0 or a.shape[0] == 0 or a[-1].size != size:
                    raise BadRequest(f"frame of layer {name!r} has shape {a.shape}, expected {self.ear.layers[k].shape}")
                a = a[-1]
            a = a.reshape(-1)
            s, e = self.offsets[k], self.offsets[k + 1]
            if self.mode == "change":
                self.target[s:e] = light(self.norm(a, dt, self.tau, slice(s, e)), self.gain)
            else:
                self.target[s:e] = self._raw(k, a)
            smooth(self.shown[s:e], self.target[s:e], dt, self.decay)

    def _raw(self, k: int, a: np.ndarray) -> np.ndarray:
        """Layer ``k``'s values scaled by the envelope of its range, times the gain, in [0, 1]."""
        lo, hi = float(a.min()), float(a.max())
        if not self._seen[k]:
            self._lo[k], self._hi[k], self._seen[k] = lo, hi, True
        else:
            r = self.envelope_release
            self._lo[k] = lo if lo < self._lo[k] else self._lo[k] + (lo - self._lo[k]) * r
            self._hi[k] = hi if hi > self._hi[k] else self._hi[k] + (hi - self._hi[k]) * r
        span = max(float(self._hi[k] - self._lo[k]), float(self._floor[k]))
        return np.clip((a - self._lo[k]) * (self.gain / span), 0.0, 1.0)

    def _luts(self) -> tuple[np.ndarray, np.ndarray]:
        """(256, 4) uint8 neuron colour and light, (256, 4) glow colour, per 8-bit light level:
        a lookup per neuron instead of a colour-map interpolation per neuron and frame."""
        key = (self.colormap, self.floor_brightness(), self.glow_strength)
        if self._lut_key != key:
            levels = np.arange(256) / 255.0
            neuron = np.empty((256, 4), np.uint8)
            neuron[:, :3] = np.round(255 * neuron_colors(levels, self.table, self.floor_brightness()))
            neuron[:, 3] = np.arange(256)
            glow = np.zeros((256, 4), np.uint8)
            glow[:, :3] = np.round(255 * np.clip(neuron_colors(levels, self.table, 0.0) * self.glow_strength, 0.0, 1.0))
            self._lut, self._lut_key = (neuron, glow), key
        return self._lut

    def neuron_rgba(self) -> np.ndarray:
        """(n, 4) uint8 what each neuron's disc shows: its colour (:func:`neuron_colors` at its
        light, to 8 bits) and its light."""
        level = np.round(np.clip(self.shown, 0.0, 1.0) * 255).astype(np.uint8)
        return self._luts()[0][level]

    def glow_rgba(self) -> np.ndarray:
        """(rows, cols, 4) uint8 the glow's colour (bottom row first): the colour map at each
        region's mean light, as bright as that light times the glow's strength."""
        level = np.round(self.glow(self.shown) * 255).astype(np.uint8)
        return self._luts()[1][level]

    def layer_energy(self) -> np.ndarray:
        """(k,) mean shown value of each layer."""
        return np.add.reduceat(self.shown, self.offsets[:-1]) / np.maximum(self.sizes, 1)

    # ------------------------------------------------------------------------ selection

    def select(self, layer: str, channels: list[int]) -> None:
        """Highlight ``channels`` (indices along the layer's first axis) of ``layer``; [] clears."""
        chans = [int(c) for c in channels]
        units = channel_units(self.ear, layer, chans)
        self.selected = self.layout.index(layer, units) if chans else np.zeros(0, np.int64)
        self.selection = (layer, chans) if chans else ("", [])

    def selection_mask(self) -> np.ndarray:
        """(n,) bool: True for each neuron of the layout that is highlighted."""
        mask = np.zeros(self.layout.n, bool)
        mask[self.selected] = True
        return mask

    # ------------------------------------------------------------------------ vectors

    def set_vector(self, name: str, values: list[float] | np.ndarray) -> None:
        """Set the ``tags``, ``top`` (class probabilities) or ``embed`` (features) vector."""
        if name not in VECTORS:
            raise BadRequest(f"unknown vector {name!r} (vectors: {', '.join(VECTORS)})")
        v = np.asarray(values, np.float32).reshape(-1)
        if v.size == 0 or not np.all(np.isfinite(v)):
            raise BadRequest(f"vector {name!r} must be non-empty and finite")
        self.vectors[name] = v

    def steering(self) -> np.ndarray:
        """The vector that steers the hallucination: top, else tags, else the ear's output layer."""
        for name in ("top", "tags"):
            if name in self.vectors:
                return self.vectors[name]
        out = self.ear.output_layer
        if out and out in self.layout.layer_names:
            k = self.layout.layer_names.index(out)
            return self.shown[self.offsets[k] : self.offsets[k + 1]]
        return self.layer_energy()

    def projection(self, length: int) -> np.ndarray:
        """(8, length) fixed random projection of a steering vector to the CPPN's latent."""
        if length not in self._projections:
            rng = np.random.default_rng([self.seed, length])
            self._projections[length] = rng.standard_normal((N_LATENT, length)).astype(np.float32)
        return self._projections[length]

    def steer(self) -> float:
        """Glide the CPPN's ``latent`` (8,) one step towards the steering vector; returns its energy.

        The energy (the vector's peak, in [0, 1]) brightens the picture; the latent follows the
        vector's shape only, so a quiet and a loud version of one sound look alike.
        """
        v = self.steering().astype(np.float32)
        energy = float(np.clip(v.max(initial=0.0), 0.0, 1.0)) if v.size else 0.0
        unit = v / (np.linalg.norm(v) + 1e-6)
        z = np.tanh(self.projection(v.size) @ unit)
        self.latent += (z - self.latent) * 0.2  # glide, so frame-to-frame jumps stay smooth
        return energy

    # ------------------------------------------------------------------------ features view

    def shuffle(self, seed: int | None = None) -> np.ndarray:
        """Redraw which feature drives which visual parameter (one of 10! mappings); returns it."""
        rng = np.random.default_rng(seed) if seed is not None else self._rng
        self.permutation = rng.permutation(N_PARAMS)
        return self.permutation

    def features(self) -> np.ndarray:
        """(10,) features in [0, 1], one step further: embed (normalised by a running range) or layer energies."""
        raw = self.vectors.get("embed")
        if raw is None:
            raw = self.layer_energy().astype(np.float32)
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

    def params(self) -> np.ndarray:
        """(10,) the features view's parameters: :meth:`features` through the permutation."""
        return self.features()[self.permutation]

    # ------------------------------------------------------------------------ on screen

    def layout_dict(self) -> dict[str, object]:
        """The layout as the web page sees it: positions as fractions of the image (y down)."""
        fx, fy = self.fit.fractions(self.layout.positions)
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
            "selection": {"layer": self.selection[0], "channels": self.selection[1]},
        }

    def pixel_of(self, neuron: int) -> tuple[int, int]:
        """(x, y) pixel of a neuron's centre in drawn images (y down)."""
        fx, fy = self.fit.fractions(self.layout.positions[neuron : neuron + 1])
        x, y = fx[0] * self.width, fy[0] * self.height
        return int(np.clip(x, 0, self.width - 1)), int(np.clip(y, 0, self.height - 1))
