"""Live render: what the pictures show for real input through a real ear, and the video file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from earsight.ears.base import Ear
from earsight.errors import BadRequest
from earsight.layout import get_layout
from earsight.render import HIGHLIGHT, Renderer, colormap_texture_data, gl, render_file
from earsight.render.state import BACKGROUND, neuron_colors

W, H = 640, 360


def clicks(sample_rate: int, seconds: float, per_second: float = 8.0) -> np.ndarray:
    """A click train: (samples,) float32."""
    x = np.zeros(int(sample_rate * seconds), np.float32)
    x[:: int(sample_rate / per_second)] = 0.9
    return x


@pytest.fixture(scope="module")
def renderer(crepe: Ear) -> Iterator[Renderer]:
    r = Renderer(crepe, get_layout(crepe, progress=False), width=W, height=H)
    try:
        yield r
    finally:
        r.close()


@pytest.fixture(autouse=True)
def gl_clean(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test that renders starts and ends without a pending GL error."""
    if "renderer" not in request.fixturenames:
        yield
        return
    r: Renderer = request.getfixturevalue("renderer")
    r.view = "layout"
    r.colormap = "magma"
    r.mode = "change"
    r.glow = 1.5
    r.labels = True
    r.select("conv1", [])
    assert r.ctx.error == "GL_NO_ERROR"
    yield
    assert r.ctx.error == "GL_NO_ERROR"


def feed(r: Renderer, frames: dict[str, np.ndarray]) -> None:
    """Every frame in order, a hop apart on the sound's clock (as a video or the live picture)."""
    n = min(v.shape[0] for v in frames.values())
    for i in range(n):
        r.update({name: v[i] for name, v in frames.items()}, dt=r.ear.hop / r.ear.sample_rate)


def own_pixels(r: Renderer) -> np.ndarray:
    """(n, 2) for each neuron the (x, y) pixel (y down) nearest its centre among those the index
    map gives it (each pixel shows the neuron whose centre is nearest); (-1, -1) for a neuron
    that got no pixel."""
    with r.ctx:
        ids = np.frombuffer(r.gl.ids_tex.read(), np.float16).reshape(r.height, r.width, 4)[::-1].astype(np.float32)
    ys, xs = np.nonzero(ids[:, :, 2] < 1.5)
    neuron = (ids[ys, xs, 0] + ids[ys, xs, 1] * gl.ROW_WIDTH).round().astype(np.int64)
    order = np.lexsort((ids[ys, xs, 2], neuron))  # by neuron, nearest first
    neuron, first = np.unique(neuron[order], return_index=True)
    out = np.full((r.layout.n, 2), -1, np.int64)
    out[neuron, 0], out[neuron, 1] = xs[order][first], ys[order][first]
    return out


def lit_everything(r: Renderer, value: float = 1.0e3) -> None:
    """A step far off every neuron's level: every neuron fully lit at once."""
    r.update({spec.name: np.zeros(spec.shape, np.float32) for spec in r.ear.layers}, dt=0.01)
    r.update({spec.name: np.full(spec.shape, value, np.float32) for spec in r.ear.layers}, dt=1.0)


@pytest.mark.parametrize("mode", ["change", "raw"])
def test_picture_follows_the_input(renderer: Renderer, crepe: Ear, mode: str) -> None:
    renderer.mode = mode
    silence = crepe.analyse(np.zeros(crepe.sample_rate, np.float32))
    click = crepe.analyse(clicks(crepe.sample_rate, 1.0))
    for _ in range(3):
        feed(renderer, silence)
    quiet = renderer.draw().astype(np.int16)
    feed(renderer, click)
    loud = renderer.draw().astype(np.int16)
    changed = np.abs(loud - quiet).max(axis=2) > 24
    assert changed.sum() > 2000, "clicks should light other neurons than silence"
    # Back in silence long enough for the level (change) or the range (raw) to settle, the
    # picture returns: it follows the sound, not the clock.
    for _ in range(8):
        feed(renderer, silence)
    again = renderer.draw().astype(np.int16)
    assert np.abs(again - quiet).mean() < 0.2 * np.abs(loud - quiet).mean()


def test_silence_is_dark_and_sound_lights_the_picture(renderer: Renderer, crepe: Ear) -> None:
    # The default (change) mode: the picture at rest is dark, clicks light much of it, and
    # after the clicks stop it fades back as the level and the light's decay settle.
    silence = crepe.analyse(np.zeros(crepe.sample_rate, np.float32))
    for _ in range(3):
        feed(renderer, silence)
    quiet = renderer.draw().astype(np.int16)
    assert renderer.state.shown.max() < 0.01, "silence lights no neuron"
    feed(renderer, crepe.analyse(clicks(crepe.sample_rate, 1.0)))
    loud = renderer.draw().astype(np.int16)
    assert loud.mean() > 2 * quiet.mean() and loud.mean() > quiet.mean() + 10, "sound lights the picture (glow included)"
    renderer.glow = 0.0
    no_glow = renderer.draw().astype(np.int16)
    assert no_glow.mean() < loud.mean() - 3, "the glow fills the space between lit neurons"


def test_every_neuron_is_drawn_at_1280x720(crepe: Ear) -> None:
    # Light everything: every neuron must then have a pixel of its own that lights up.
    with Renderer(crepe, get_layout(crepe, progress=False), width=1280, height=720) as r:
        r.glow = 0.0
        lit_everything(r)
        image = r.draw()
        xy = own_pixels(r)
    assert (xy[:, 0] >= 0).mean() > 0.99, "all but a handful of neurons have a pixel of their own"
    xy = xy[xy[:, 0] >= 0]
    assert (image[xy[:, 1], xy[:, 0]].max(axis=1) > 40).all(), "and every neuron's pixel lights up"


def test_drawn_neurons_have_the_render_states_colours(renderer: Renderer, crepe: Ear) -> None:
    # The pure-numpy colours (no GL) are what the shader paints at each neuron's centre.
    # Each layer a ramp over its units, so the neurons span the whole colour map.
    renderer.mode = "raw"
    renderer.labels = False  # the labels sit over neurons
    ramps = {s.name: np.linspace(0.0, 1e3, s.size, dtype=np.float32).reshape(s.shape) for s in crepe.layers}
    for _ in range(20):
        renderer.update(ramps, dt=0.05)
    image = renderer.draw().astype(int)
    table = colormap_texture_data("magma")
    expected = np.round(255 * neuron_colors(renderer.state.shown, table, renderer.state.floor_brightness())).astype(int)
    xy = own_pixels(renderer)
    has = xy[:, 0] >= 0
    with renderer.ctx:
        ids = np.frombuffer(renderer.gl.ids_tex.read(), np.float16).reshape(H, W, 4)[::-1].astype(np.float32)
    # Where a neuron's own pixel lies well inside its smallest disc (radius 0.55, the rim fading
    # over the outer sixth), the disc covers the pixel whole: it shows exactly that colour.
    inside = has.copy()
    inside[has] = ids[xy[has, 1], xy[has, 0], 2] < 0.55 - 1 / 6
    assert inside.mean() > 0.5, "most neurons have a pixel inside their disc at 640x360"
    close = np.abs(image[xy[inside, 1], xy[inside, 0]] - expected[inside]).max(axis=1) <= 3
    assert close.all()
    assert np.ptp(renderer.state.shown) > 0.5, "a picture with contrast, not one flat colour"


def test_selected_neuron_is_highlighted(renderer: Renderer, crepe: Ear) -> None:
    renderer.labels = False  # the labels sit over neurons
    feed(renderer, crepe.analyse(clicks(crepe.sample_rate, 0.3)))
    neuron = int(renderer.layout.index("conv3", [5 * 32 + 7])[0])  # channel 5, position 7
    x, y = renderer.pixel_of(neuron)
    before = renderer.draw()[y, x].astype(int)
    renderer.select("conv3", [5])
    assert renderer.selection == ("conv3", [5])
    after = renderer.draw()[y, x].astype(int)
    expected = np.round(np.array(HIGHLIGHT) * 255).astype(int)
    assert np.abs(after - expected).max() <= 3, (before, after)
    assert np.abs(before - expected).max() > 30
    renderer.select("conv3", [])
    assert np.abs(renderer.draw()[y, x].astype(int) - expected).max() > 30


def test_bad_requests_are_refused(renderer: Renderer) -> None:
    with pytest.raises(BadRequest):
        renderer.view = "nope"
    with pytest.raises(BadRequest):
        renderer.colormap = "jet"
    with pytest.raises(BadRequest):
        renderer.select("conv3", [16])
    with pytest.raises(BadRequest):
        renderer.select("conv99", [0])
    with pytest.raises(BadRequest):
        renderer.set_vector("colour", [1.0])
    with pytest.raises(BadRequest):
        renderer.update({"conv3": np.zeros(3, np.float32)})


def test_tiles_cover_exactly_the_busy_cells() -> None:
    busy = np.zeros((100, 200), bool)
    busy[40, 70] = True  # one pixel: the tile of columns 64-95, rows 32-63
    busy[99, 199] = True  # the corner: a tile cut at the picture's edge
    triangles = gl.tiles(busy, tile=32)
    assert triangles.shape == (12, 2)
    x = (triangles[:, 0] + 1) / 2 * 200
    y = (triangles[:, 1] + 1) / 2 * 100
    assert sorted(set(np.round(x[:6]).tolist())) == [64, 96] and sorted(set(np.round(y[:6]).tolist())) == [32, 64]
    assert sorted(set(np.round(x[6:]).tolist())) == [192, 200] and sorted(set(np.round(y[6:]).tolist())) == [96, 100]
    assert gl.tiles(np.zeros((10, 10), bool)).shape == (0, 2)


def bilinear(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """(rows, cols, c) bottom row first -> (height, width, c) top row first, as GL samples it
    linearly at pixel centres with clamped edges."""
    rows, cols = image.shape[:2]
    x = np.clip((np.arange(width) + 0.5) * cols / width - 0.5, 0, cols - 1)
    y = np.clip((np.arange(height) + 0.5) * rows / height - 0.5, 0, rows - 1)
    x0, y0 = np.minimum(x.astype(int), cols - 2), np.minimum(y.astype(int), rows - 2)
    fx, fy = (x - x0)[None, :, None], (y - y0)[:, None, None]
    im = image.astype(np.float64)
    top = im[y0][:, x0] * (1 - fx) + im[y0][:, x0 + 1] * fx
    bottom = im[y0 + 1][:, x0] * (1 - fx) + im[y0 + 1][:, x0 + 1] * fx
    return (top * (1 - fy) + bottom * fy)[::-1]


def test_tiles_with_only_the_glow_show_it(renderer: Renderer) -> None:
    # Tiles without a neuron or an edge run only the glow's pass: there, the picture is the
    # background plus the glow, scaled up.
    renderer.labels = False
    lit_everything(renderer)
    picture = renderer.draw().astype(np.float64)
    g = renderer.gl
    with renderer.ctx:
        ids = np.frombuffer(g.ids_tex.read(), np.float16).reshape(H, W, 4)
    structure = gl.tile_mask((ids[:, :, 2] <= 1.0) | (ids[:, :, 3] > 0.5))
    corners = gl.tile_triangles(~structure, (H, W))
    assert 0 < g.n_glow_tiles <= corners.shape[0], "the glow pass draws only tiles without neurons and edges"
    # The background is added to each glow texel (to 8 bits, at most 255), then scaled up.
    texels = np.minimum(renderer.state.glow_rgba()[..., :3] + np.round(255 * np.array(BACKGROUND)), 255)
    glow = bilinear(texels, W, H)
    only = np.zeros((H, W), bool)  # pixels of glow-only tiles, top row first
    for r, c in zip(*np.nonzero(~structure), strict=True):
        only[r * gl.TILE : (r + 1) * gl.TILE, c * gl.TILE : (c + 1) * gl.TILE] = True
    only = only[::-1]
    shown = glow[only].max(axis=1) > 4
    assert shown.sum() > 1000, "the glow reaches beyond the neurons and edges"
    assert np.abs(picture[only] - glow[only]).max() <= 2.0


def test_edges_between_lit_neurons_glow(renderer: Renderer) -> None:
    # Pixels where edges pass and no neuron is: brighter when both ends of the edge are lit.
    renderer.glow = 0.0
    renderer.labels = False
    with renderer.ctx:  # the index map: (texel x, y, distance from a neuron's centre, edges here)
        ids = np.frombuffer(renderer.gl.ids_tex.read(), np.float16).reshape(H, W, 4)[::-1]
    edge_only = (ids[:, :, 2] > 1.5) & (ids[:, :, 3] > 0.5)
    assert edge_only.sum() > 1000, "the layout has edges between neurons"
    renderer.mode = "raw"
    renderer.update({s.name: np.zeros(s.shape, np.float32) for s in renderer.ear.layers}, dt=1.0)
    dark = renderer.draw().astype(np.int16)[edge_only].sum(axis=1)
    lit_everything(renderer)
    lit = renderer.draw().astype(np.int16)[edge_only].sum(axis=1)
    assert np.median(lit - dark) > 60, "an active path glows"
    background = ids[:, :, 3] < 0.5
    assert np.array_equal(renderer.draw()[background & (ids[:, :, 2] > 1.5)].max(axis=0) <= 12, [True] * 3), \
        "where no edge and no neuron is, the picture stays dark"


def test_labels_and_legend_are_drawn_and_toggle(renderer: Renderer) -> None:
    renderer.glow = 0.0
    renderer.labels = True
    with_labels = renderer.draw().astype(np.int16)
    renderer.labels = False
    without = renderer.draw().astype(np.int16)
    changed = np.abs(with_labels - without).max(axis=2) > 40
    boxes = renderer.gl.overlay_boxes  # emptied by the toggle: what the labels covered is gone
    assert boxes == []
    renderer.labels = True
    renderer.draw()
    assert changed.sum() > 300, "labels and the legend show"
    inside = np.zeros((H, W), bool)
    for x, y, w, h in renderer.gl.overlay_boxes:
        inside[H - y - h : H - y, x : x + w] = True
    assert not (changed & ~inside).any(), "the overlay draws nothing outside its boxes"
    # The legend's colour bar sits in the bottom-left corner.
    assert changed[H - H // 8 :, : W // 3].sum() > 100


def test_colormaps_change_the_picture(renderer: Renderer) -> None:
    # Each layer a ramp over its units, so the neurons span the whole colour map.
    renderer.mode = "raw"
    renderer.labels = False  # the labels sit over neurons
    ramps = {s.name: np.linspace(0.0, 1e3, s.size, dtype=np.float32).reshape(s.shape) for s in renderer.ear.layers}
    for _ in range(20):
        renderer.update(ramps, dt=0.05)
    images = {}
    for name in ("magma", "viridis", "inferno", "gray"):
        renderer.colormap = name
        images[name] = renderer.draw().astype(np.int16)
    # At neuron centres the colour map alone decides (edges glow blue-grey between neurons).
    xy = np.array([renderer.pixel_of(i) for i in range(0, renderer.layout.n, 7)])
    gray = images["gray"][xy[:, 1], xy[:, 0]]
    # (all but the few whose centre pixel falls on another neuron's rim, where the tinted edges show through)
    assert np.mean(np.abs(gray[:, 0] - gray[:, 2]) <= 3) > 0.99, "gray is gray"
    magma = images["magma"][xy[:, 1], xy[:, 0]]
    assert np.abs(magma[:, 0] - magma[:, 2]).max() > 30
    assert np.abs(images["viridis"] - images["magma"]).mean() > 1.0


def test_hallucination_is_steered_by_the_vector(renderer: Renderer) -> None:
    renderer.view = "hallucination"
    renderer.set_time(1.0)
    try:
        shots = []
        for hot in (3, 40):
            tags = np.zeros(50, np.float32)
            tags[hot] = 0.9
            renderer.set_vector("tags", tags)
            for _ in range(40):  # the latent glides; let it arrive
                image = renderer.draw()
            shots.append(image.astype(np.int16))
        assert shots[0].std() > 10, "a pattern, not a flat colour"
        assert np.abs(shots[0] - shots[1]).mean() > 8
    finally:
        renderer.set_time(None)


def test_shuffle_remaps_features_to_parameters(renderer: Renderer) -> None:
    renderer.view = "features"
    renderer.set_time(2.0)
    try:
        renderer.set_vector("embed", np.linspace(0.0, 1.0, 10))
        p1 = renderer.shuffle(1).copy()
        for _ in range(30):
            a = renderer.draw().astype(np.int16)
        p2 = renderer.shuffle(2).copy()
        for _ in range(30):
            b = renderer.draw().astype(np.int16)
        assert sorted(p1) == list(range(10)) and not np.array_equal(p1, p2)
        assert np.abs(a - b).mean() > 8
    finally:
        renderer.set_time(None)


def test_snapshot_and_reload(renderer: Renderer, tmp_path: Path) -> None:
    path = renderer.snapshot(tmp_path / "shot.png")
    from PIL import Image

    assert Image.open(path).size == (W, H)
    before = renderer.draw().copy()
    assert sorted(renderer.reload_shaders()) == sorted(
        ["neuron_ids", "neurons", "markers", "edges", "edge_ends", "pack_maps", "mark_structure", "hallucination",
         "features", "blit"]
    )
    assert renderer.shader_error is None
    assert np.array_equal(renderer.draw(), before)


def test_edited_shader_reloads_and_a_broken_one_keeps_the_last(
    crepe: Ear, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EARSIGHT_SHADERS", str(tmp_path))
    source = (Path(gl.shader_path("features")).read_text())
    mine = tmp_path / "features.glsl"
    mine.write_text(source)
    r = Renderer(crepe, get_layout(crepe, progress=False), width=160, height=90)
    try:
        r.view = "features"
        assert r.ctx.error == "GL_NO_ERROR"
        original = r.draw().astype(int)
        assert original.std() > 5
        # Live edit: the fragment now paints flat red. The file's mtime tells the renderer.
        mine.write_text(source.replace("f_color = vec4(c, 1.0);", "f_color = vec4(1.0, 0.0, 0.0, 1.0);"))
        os.utime(mine, (time.time() + 5, time.time() + 5))
        time.sleep(0.6)  # mtimes are checked twice a second
        red = r.draw().astype(int)
        assert np.all(red == [255, 0, 0])
        # A typo keeps the last good program, and says why.
        mine.write_text(source.replace("void main()", "void main() { syntax error"))
        os.utime(mine, (time.time() + 10, time.time() + 10))
        time.sleep(0.6)
        assert np.array_equal(r.draw(), red)
        assert r.shader_error is not None and "features" in r.shader_error
        assert r.ctx.error == "GL_NO_ERROR"
    finally:
        r.close()


def test_shader_files_hold_every_stage() -> None:
    for path in sorted(Path(gl.shader_path("neurons")).parent.glob("*.glsl")):
        stages = gl.shader_sources(path.stem)
        assert set(stages) == {"vertex_shader", "fragment_shader"}, path
        assert "#define VERTEX_SHADER" in stages["vertex_shader"]


WINDOW_SCRIPT = """
import json, numpy as np
from earsight.ears import registry
from earsight.render import Renderer, context
ear = registry.load("crepe")
r = Renderer(ear, width=320, height=180, window=True)
before = r.ctx.error
x = np.zeros(ear.sample_rate // 4, np.float32); x[::2000] = 0.9
frames = ear.analyse(x)
for i in range(frames["conv1"].shape[0]):
    r.update({k: v[i] for k, v in frames.items()})
image = r.draw()
print(json.dumps({"window": context.window_of(r.ctx) is not None, "before": before, "after": r.ctx.error,
                  "shape": list(image.shape), "max": int(image.max())}))
r.close()
"""


def test_window_under_xvfb(crepe: Ear, xvfb: str) -> None:
    # Its own process: GLX refuses to make a window current in a thread that holds the
    # tests' EGL context, and a server has one renderer anyway.
    proc = subprocess.run(
        [sys.executable, "-c", WINDOW_SCRIPT], env={**os.environ, "DISPLAY": xvfb},
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"window": True, "before": "GL_NO_ERROR", "after": "GL_NO_ERROR",
                      "shape": [180, 320, 3], "max": result["max"]}
    assert result["max"] > 60


def write_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())


def test_rendered_video_has_the_files_duration(crepe: Ear, tmp_path: Path) -> None:
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe is not installed")
    wav = tmp_path / "clicks.wav"
    write_wav(wav, clicks(22050, 1.5), 22050)
    out = render_file(wav, "crepe", tmp_path / "clicks.mp4", fps=15, size=(320, 180), progress=False)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type,width,height",
         "-of", "json", str(out)],
        capture_output=True, text=True, check=True,
    )
    info = json.loads(probe.stdout)
    assert abs(float(info["format"]["duration"]) - 1.5) < 0.1
    kinds = sorted(s["codec_type"] for s in info["streams"])
    assert kinds == ["audio", "video"]
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (320, 180)
