"""What is drawn over the layout view, computed without GL: the layer labels and the legend.

They change only with the layout, the size, the colour map and the light settings, so they are
drawn once into an RGBA image (PIL) that the ``blit`` program blends over every frame, only
inside the boxes that hold them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .normalise import FULL_SCALE
from .state import colormap_texture_data, neuron_colors

if TYPE_CHECKING:
    from .state import RenderState

def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def label_anchors(state: RenderState) -> list[tuple[str, float, float]]:
    """(layer, x, y) in pixels (y down) where each layer's label goes: above the layer's
    top-centre neuron, so labels of concentric rings and of stacked bands do not collide."""
    fx, fy = state.fit.fractions(state.layout.positions)
    x, y = fx * state.width, fy * state.height
    out = []
    for k, name in enumerate(state.layout.layer_names):
        s, e = state.offsets[k], state.offsets[k + 1]
        if e <= s:
            continue
        lx, ly = x[s:e], y[s:e]
        cx, top = float(lx.mean()), float(ly.min())
        # The neuron nearest the top-centre of the layer's extent, in a band as tall as a few neurons.
        near_top = ly <= top + 4 * state.fit.radius_px
        i = int(np.argmin(np.where(near_top, np.abs(lx - cx), np.inf)))
        out.append((name, float(lx[i]), float(ly[i])))
    return out


Box = tuple[int, int, int, int]
"""(x, y, width, height) in pixels, y up from the bottom (GL's scissor box)."""


def overlay_image(state: RenderState) -> tuple[np.ndarray, list[Box]]:
    """(height, width, 4) uint8 RGBA, top row first: the layer labels and the legend; and the
    boxes that hold them, so blending it costs only where there is something to blend."""
    w, h = state.width, state.height
    image = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    if not state.labels:
        return np.asarray(image), []
    draw = ImageDraw.Draw(image)
    size = max(10, round(h / 50))
    font = _font(size)
    stroke = max(1, size // 6)
    placed: list[tuple[float, float, float, float]] = []
    for name, x, y in sorted(label_anchors(state), key=lambda a: a[2]):
        at = (x, y - state.fit.radius_px - 2)
        box = draw.textbbox(at, name, font=font, anchor="mb", stroke_width=stroke)
        # Labels of layers that sit close together would overlap: move the later one down a line.
        while any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
            at = (at[0], at[1] + (box[3] - box[1]) + 1)
            box = draw.textbbox(at, name, font=font, anchor="mb", stroke_width=stroke)
        placed.append(box)
        draw.text(at, name, font=font, fill=(235, 235, 240, 235), anchor="mb", stroke_width=stroke, stroke_fill=(0, 0, 0, 200))
    # The legend: the colour map as neurons show it, from rest to full light, and what full means.
    table = colormap_texture_data(state.colormap)
    bar_w, bar_h = max(80, w // 6), max(6, h // 80)
    x0, y0 = size, h - size - bar_h
    colours = neuron_colors(np.linspace(0.0, 1.0, bar_w), table, state.floor_brightness())
    bar = (np.clip(colours, 0.0, 1.0) * 255).round().astype(np.uint8)
    image.paste(Image.fromarray(np.repeat(bar[None], bar_h, axis=0), "RGB"), (x0, y0))
    if state.mode == "change":
        low, high = "at rest", f"{FULL_SCALE / state.gain:.3g} spreads off its level"
        title = f"{state.ear.name}: change, tau {state.tau:g} s"
    else:
        low, high, title = "quiet", "loud", f"{state.ear.name}: raw level"
    small = _font(max(9, round(size * 0.8)))
    grey = (200, 200, 210, 230)
    draw.text((x0, y0 - 3), title, font=small, fill=grey, anchor="lb")
    draw.text((x0, y0 + bar_h + 2), low, font=small, fill=grey, anchor="lt")
    draw.text((x0 + bar_w, y0 + bar_h + 2), high, font=small, fill=grey, anchor="rt")
    rgba = np.asarray(image)
    return rgba, _boxes(rgba[:, :, 3])


def _boxes(alpha: np.ndarray, cell: int = 32) -> list[Box]:
    """The cells of a ``cell``-pixel grid where ``alpha`` is not all zero, merged along rows."""
    h, w = alpha.shape
    rows, cols = -(-h // cell), -(-w // cell)
    padded = np.zeros((rows * cell, cols * cell), bool)
    padded[:h, :w] = alpha > 0
    used: np.ndarray = np.asarray(padded.reshape(rows, cell, cols, cell).any(axis=(1, 3)))
    boxes = []
    for r in range(rows):
        c = 0
        while c < cols:
            if not used[r, c]:
                c += 1
                continue
            start = c
            while c < cols and used[r, c]:
                c += 1
            top = r * cell
            height = min(cell, h - top)
            boxes.append((start * cell, h - top - height, min(c * cell, w) - start * cell, height))
    return boxes
