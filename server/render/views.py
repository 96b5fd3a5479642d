"""One draw function per view, each feeding a :class:`RenderState` to the GL objects' programs.

- ``layout``: every neuron of the ear at its place in the :mod:`earsight.layout`, coloured by
  its light (:mod:`.normalise`); edges faint underneath, glowing where both their neurons are lit;
  selected neurons marked; layer labels and the legend on top (:mod:`.overlay`).
- ``hallucination``: a CPPN shader steered by the ``top``/``tags`` vector (or the ear's own
  output layer when nobody sent one), after the audio-visual hallucinations seed.
- ``features``: a kaleidoscope whose ten parameters are the ``embed`` features (or the energy
  of each layer) through a random permutation that :meth:`RenderState.shuffle` redraws.

The hallucination and features views draw a full-screen triangle that writes every pixel of
``g.fbo``, so nothing is cleared first; the layout view clears, draws the glow on the tiles
where something may show (:func:`~.gl.tiles`), and its neuron pass over it only where a neuron
or an edge is. Call them with the context current.
"""

from __future__ import annotations

from collections.abc import Callable

import moderngl
import numpy as np

from . import context
from .gl import ROW_WIDTH, GLObjects, set_uniform
from .state import BACKGROUND, EDGE_COLOR, HIGHLIGHT, PATH_STRENGTH, RenderState


def mat4_blocks(w: np.ndarray) -> list[tuple[float, ...]]:
    """(4r, 4c) matrix -> r*c GLSL mat4s (column-major), block (i, j) at i * c + j."""
    r, c = w.shape[0] // 4, w.shape[1] // 4
    return [tuple(float(x) for x in w[4 * i : 4 * i + 4, 4 * j : 4 * j + 4].T.reshape(-1)) for i in range(r) for j in range(c)]


def vec4s(v: np.ndarray) -> list[tuple[float, ...]]:
    """(4k,) -> k vec4s."""
    return [tuple(float(x) for x in v[i : i + 4]) for i in range(0, v.shape[0], 4)]


def bake(g: GLObjects, state: RenderState) -> None:
    """Draw what never changes while the layout stays: the neuron index map, the edge density
    and the edge ends map, packed into one map; then find the tiles where something may show
    (:func:`~.gl.tiles`)."""
    ctx = g.ctx
    fit = state.fit
    fbo = g.ids_fbo
    fbo.use()
    fbo.color_mask = (True, True, True, True)
    fbo.clear(0.0, 0.0, 2.0, 0.0, depth=1.0)  # distance 2: no neuron here
    if g.n_edges:
        fbo.color_mask = (False, False, False, True)
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.ONE, moderngl.ONE
        set_uniform(g.programs["edges"], "u_scale", fit.scale)
        g.vao_edges.render(moderngl.LINES, vertices=2 * g.n_edges)
        ctx.disable(moderngl.BLEND)
    fbo.color_mask = (True, True, True, False)
    ctx.enable(moderngl.DEPTH_TEST)
    ctx.depth_func = "<"  # the nearest centre keeps the pixel (the layout view leaves ">" set)
    ids = g.programs["neuron_ids"]
    set_uniform(ids, "u_row_width", ROW_WIDTH)
    set_uniform(ids, "u_scale", fit.scale)
    set_uniform(ids, "u_radius", fit.radius)
    g.vao_ids.render(moderngl.TRIANGLES, vertices=6 * state.layout.n)
    ctx.disable(moderngl.DEPTH_TEST)
    fbo.color_mask = (True, True, True, True)
    g.ends_fbo.use()
    g.ends_fbo.clear(0.0, 0.0, 0.0, 0.0)
    if g.n_edges:
        set_uniform(g.programs["edge_ends"], "u_scale", fit.scale)
        g.vao_ends.render(moderngl.LINES, vertices=2 * g.n_edges)
    g.map_fbo.use()
    g.ids_tex.use(0)
    g.ends_tex.use(1)
    set_uniform(g.programs["pack_maps"], "u_ids", 0)
    set_uniform(g.programs["pack_maps"], "u_ends", 1)
    g.vao_pack.render(moderngl.TRIANGLES, vertices=3)
    # The marks the neuron pass tests against: depth 0 where a neuron or an edge is, 1 elsewhere,
    # in the picture's own depth buffer, which nothing else writes or clears.
    g.fbo.use()
    g.fbo.depth_mask = True
    g.fbo.color_mask = (False, False, False, False)
    g.fbo.clear(depth=1.0)
    ctx.enable(moderngl.DEPTH_TEST)
    ctx.depth_func = "<="
    g.map_tex.use(0)
    set_uniform(g.programs["mark_structure"], "u_map", 0)
    g.vao_mark.render(moderngl.TRIANGLES, vertices=3)
    ctx.disable(moderngl.DEPTH_TEST)
    g.fbo.color_mask = (True, True, True, True)
    g.fbo.depth_mask = False
    g.find_tiles()


def draw_layout(g: GLObjects, state: RenderState) -> None:
    ctx = g.ctx
    g.upload_neurons(state.neuron_rgba())
    g.fbo.clear(*BACKGROUND)  # where nothing shows (the depth marks stay: depth_mask is off)
    if state.glow_strength > 0 and g.n_glow_tiles:
        # The background added here, once per glow texel: the pass is then a plain blit, scaled up.
        rgba = state.glow_rgba()
        rgba[..., :3] = np.minimum(rgba[..., :3] + np.round(255 * np.array(BACKGROUND)), 255)
        g.upload_glow(rgba)
        g.glow_tex.use(5)
        set_uniform(g.programs["blit"], "u_image", 5)
        g.vao_glow.render(moderngl.TRIANGLES, vertices=g.n_glow_tiles)
    g.map_tex.use(0)
    g.act_tex.use(1)
    neurons = g.programs["neurons"]
    set_uniform(neurons, "u_map", 0)
    set_uniform(neurons, "u_neurons", 1)
    set_uniform(neurons, "u_edge_color", EDGE_COLOR)
    set_uniform(neurons, "u_path_strength", PATH_STRENGTH)
    # Only where a neuron or an edge is (its mark, depth 0, lies behind the pass's 0.5), over the glow.
    ctx.enable(moderngl.DEPTH_TEST | moderngl.BLEND)
    ctx.depth_func = ">"
    ctx.blend_func = moderngl.ONE, moderngl.ONE_MINUS_SRC_ALPHA
    g.vao_neurons.render(moderngl.TRIANGLES, vertices=g.n_tiles)
    ctx.disable(moderngl.DEPTH_TEST | moderngl.BLEND)
    if g.n_markers:
        markers = g.programs["markers"]
        set_uniform(markers, "u_scale", state.fit.scale)
        set_uniform(markers, "u_radius", state.fit.marker_radius)
        set_uniform(markers, "u_highlight", HIGHLIGHT)
        for rims in (True, False):
            set_uniform(markers, "u_rims", rims)
            g.vao_markers.render(moderngl.TRIANGLES, vertices=6 * g.n_markers)
    if state.labels and g.overlay_boxes:
        g.overlay_tex.use(4)
        set_uniform(g.programs["blit"], "u_image", 4)
        ctx.enable(moderngl.BLEND)
        ctx.blend_func = moderngl.SRC_ALPHA, moderngl.ONE_MINUS_SRC_ALPHA
        for box in g.overlay_boxes:  # only where there is text: a full-screen blend costs a whole pass
            g.fbo.scissor = box
            g.vao_blit.render(moderngl.TRIANGLES, vertices=3)
        g.fbo.scissor = None  # type: ignore[assignment]  # None: the whole framebuffer
        ctx.disable(moderngl.BLEND)


def draw_hallucination(g: GLObjects, state: RenderState) -> None:
    energy = state.steer()
    latent = state.latent
    program = g.programs["hallucination"]
    w = state.cppn
    set_uniform(program, "u_w1", mat4_blocks(w["w1"]))
    set_uniform(program, "u_b1", vec4s(w["w1z"] @ latent))
    set_uniform(program, "u_w2", mat4_blocks(w["w2"]))
    set_uniform(program, "u_w3", mat4_blocks(w["w3"]))
    set_uniform(program, "u_zoom", 1.2 + 0.8 * float(latent[-1]))
    set_uniform(program, "u_time", state.time())
    set_uniform(program, "u_aspect", state.width / state.height)
    set_uniform(program, "u_energy", energy)
    # The CPPN is smooth: render it small and let linear filtering scale it up.
    g.small_fbo.use()
    g.vao_halluc.render(moderngl.TRIANGLES, vertices=3)
    # The blit reads what this pass draws: wait for the rasteriser here, with the GIL free
    # (the next draw call would wait for it holding the GIL, and every other thread with it).
    context.finish(g.ctx)
    g.fbo.use()
    g.small_tex.use(1)
    set_uniform(g.programs["blit"], "u_image", 1)
    g.vao_blit.render(moderngl.TRIANGLES, vertices=3)


def draw_features(g: GLObjects, state: RenderState) -> None:
    program = g.programs["features"]
    set_uniform(program, "u_params", tuple(float(x) for x in state.params()))
    set_uniform(program, "u_time", state.time())
    set_uniform(program, "u_aspect", state.width / state.height)
    g.vao_features.render(moderngl.TRIANGLES, vertices=3)


DRAW: dict[str, Callable[[GLObjects, RenderState], None]] = {
    "layout": draw_layout,
    "hallucination": draw_hallucination,
    "features": draw_features,
}
"""View name -> its draw function (the keys are :data:`earsight.render.state.VIEWS`)."""
