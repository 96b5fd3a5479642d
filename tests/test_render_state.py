"""The render state without GL: known answers for per-neuron values, colours, selection and mappings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from earsight.ears.base import Ear
from earsight.errors import BadRequest, EarsightError
from earsight.layout import Layout, get_layout
from earsight.render.normalise import ATTACK, MODES, ew_alpha
from earsight.render.state import (
    N_LATENT,
    N_PARAMS,
    RenderState,
    ScreenFit,
    channel_units,
    colormap_texture_data,
    cppn_weights,
    neuron_colors,
)

LOUD = 1.0e6  # far above any layer's calibrated range, so normalisation saturates


@pytest.fixture(scope="module")
def layout(crepe: Ear) -> Layout:
    return get_layout(crepe, progress=False)


@pytest.fixture
def state(crepe: Ear, layout: Layout) -> RenderState:
    return RenderState(crepe, layout, width=640, height=360)


def constant(ear: Ear, value: float) -> dict[str, np.ndarray]:
    return {spec.name: np.full(spec.shape, value, np.float32) for spec in ear.layers}


DT = 0.01
UP = ew_alpha(DT, ATTACK)


@pytest.mark.parametrize("mode", MODES)
def test_values_follow_frames_with_attack_and_decay(state: RenderState, crepe: Ear, mode: str) -> None:
    state.mode = mode
    state.update(constant(crepe, 0.0), dt=DT)
    assert np.all(state.shown == 0.0), "a first frame sets the level (change) or the range (raw): a flat frame is dark"
    state.update(constant(crepe, LOUD), dt=DT)
    # Far off the level (change) or at the top of the range, which jumps up at once (raw):
    # target 1, shown one attack.
    assert np.all(state.target == 1.0)
    assert np.allclose(state.shown, UP)
    assert np.allclose(state.layer_energy(), UP)
    state.update(constant(crepe, 0.0), dt=DT)
    if mode == "raw":
        assert np.all(state.target == 0.0)
    else:
        assert np.all(state.target == 1.0), "back to silence is a change too"
    down = ew_alpha(DT, state.decay)
    assert np.allclose(state.shown, UP * (1.0 - down) if mode == "raw" else UP + (1.0 - UP) * UP)


def test_a_stack_of_frames_shows_its_last_and_a_wrong_shape_is_refused(state: RenderState, crepe: Ear) -> None:
    state.update(constant(crepe, 0.0), dt=DT)
    spec = crepe.layer("conv3")
    stack = np.zeros((3, *spec.shape), np.float32)
    stack[-1] = LOUD
    state.update({"conv3": stack, "not-a-layer": np.zeros(2)}, dt=DT)
    s, e = state.offsets[2], state.offsets[3]
    assert np.allclose(state.shown[s:e], UP)
    assert np.all(state.shown[:s] == 0.0) and np.all(state.shown[e:] == 0.0)
    with pytest.raises(BadRequest):
        state.update({"conv3": np.zeros(3, np.float32)})


def test_neuron_colours_have_known_answers() -> None:
    gray = colormap_texture_data("gray")
    assert gray.shape == (256, 3) and np.array_equal(gray[:, 0], np.arange(256))
    colours = neuron_colors(np.array([0.0, 1.0, 2.0, -1.0]), gray)
    # Silent: the map 12 % up (texel 0.12 * 256 - 0.5), dimmed to 35 %; full: the map's top.
    silent = (0.12 * 256 - 0.5) / 255 * 0.35
    assert np.allclose(colours[0], silent) and np.allclose(colours[3], silent)
    assert np.allclose(colours[1], 1.0) and np.allclose(colours[2], 1.0)
    magma = colormap_texture_data("magma")
    top = neuron_colors(np.ones(1), magma)[0]
    assert np.allclose(top, magma[255] / 255.0)
    assert top[0] > top[2], "magma ends in a warm yellow"
    with pytest.raises(BadRequest):
        colormap_texture_data("jet")


def test_selection_marks_exactly_the_chosen_neurons(state: RenderState, crepe: Ear, layout: Layout) -> None:
    state.select("conv3", [5, 2])
    assert state.selection == ("conv3", [5, 2])
    mask = state.selection_mask()
    per_channel = crepe.layer("conv3").size // crepe.layer("conv3").channels
    assert mask.sum() == 2 * per_channel
    k = layout.layer_names.index("conv3")
    assert np.all(layout.layer[mask] == k)
    assert sorted(set((layout.unit[mask] // per_channel).tolist())) == [2, 5]
    assert np.array_equal(np.sort(state.selected), np.flatnonzero(mask))
    assert np.array_equal(channel_units(crepe, "conv3", [1]), np.arange(per_channel, 2 * per_channel))
    # Refused requests leave the selection as it was; [] clears it.
    for layer, channels in (("conv3", [16]), ("conv99", [0])):
        with pytest.raises(BadRequest):
            state.select(layer, channels)
        assert state.selection == ("conv3", [5, 2])
    state.select("conv3", [])
    assert state.selection == ("", []) and not state.selection_mask().any()


def test_shuffle_with_a_seed_is_repeatable(crepe: Ear, layout: Layout) -> None:
    a, b = RenderState(crepe, layout, seed=4), RenderState(crepe, layout, seed=4)
    assert np.array_equal(a.permutation, b.permutation)
    assert sorted(a.permutation.tolist()) == list(range(N_PARAMS))
    p3 = a.shuffle(3).copy()
    assert np.array_equal(b.shuffle(3), p3)
    assert not np.array_equal(a.shuffle(4), p3)
    # Without a seed each state draws from its own generator: the same sequence for equal seeds.
    assert np.array_equal(a.shuffle(), b.shuffle())


def test_features_view_parameters_go_through_the_permutation(state: RenderState) -> None:
    state.set_vector("embed", np.linspace(0.0, 1.0, N_PARAMS))
    state.shuffle(1)
    twin = RenderState(state.ear, state.layout, width=640, height=360)
    twin.set_vector("embed", np.linspace(0.0, 1.0, N_PARAMS))
    for _ in range(40):
        params = state.params()
        features = twin.features()
    assert np.allclose(params, features[state.permutation])
    assert params.min() >= 0.0 and params.max() <= 1.0
    # A short vector repeats: three features fill ten parameters. While they have not moved,
    # each is its raw value squashed, approached by a quarter per frame.
    fresh = RenderState(state.ear, state.layout)
    fresh.set_vector("embed", [0.0, 1.0, 2.0])
    f = fresh.features()
    squashed = 0.25 * (0.5 + 0.5 * np.tanh([0.0, 1.0, 2.0]))
    assert np.allclose(f, np.resize(squashed, N_PARAMS))


def test_hallucination_is_steered_by_top_then_tags_then_the_output_layer(state: RenderState, crepe: Ear) -> None:
    s, e = state.offsets[-2], state.offsets[-1]
    assert crepe.output_layer == "pitch"
    assert np.shares_memory(state.steering(), state.shown[s:e])
    tags = np.zeros(50, np.float32)
    tags[3] = 0.9
    state.set_vector("tags", tags)
    assert np.array_equal(state.steering(), tags)
    top = np.zeros(50, np.float32)
    top[40] = 2.0
    state.set_vector("top", top)
    assert np.array_equal(state.steering(), top)
    for _ in range(200):
        energy = state.steer()
    assert energy == 1.0  # the peak, clipped to [0, 1]
    # The latent glides to the projection of the vector's shape, whatever its level.
    assert np.allclose(state.latent, np.tanh(state.projection(50)[:, 40]), atol=1e-4)
    assert state.latent.shape == (N_LATENT,)
    w = cppn_weights(0)
    assert {k: v.shape for k, v in w.items()} == {"w1": (16, 4), "w1z": (16, N_LATENT), "w2": (16, 16), "w3": (4, 16)}
    assert all(np.array_equal(w[k], state.cppn[k]) for k in w)
    assert not np.array_equal(cppn_weights(1)["w1"], w["w1"])


def test_the_layout_fits_the_picture(state: RenderState, layout: Layout) -> None:
    d = state.layout_dict()
    x, y = np.array(d["x"]), np.array(d["y"])
    assert len(x) == layout.n and d["layers"] == list(layout.layer_names)
    # Whole layout visible with a 3 % margin, centred on one axis at least.
    assert x.min() >= 0.03 - 1e-4 and x.max() <= 0.97 + 1e-4 and y.min() >= 0.03 - 1e-4 and y.max() <= 0.97 + 1e-4
    assert abs(min(x.min(), y.min(), 1 - x.max(), 1 - y.max()) - 0.03) < 1e-3
    for i in (0, layout.n // 2, layout.n - 1):
        px, py = state.pixel_of(i)
        assert abs(px - x[i] * 640) <= 1 and abs(py - y[i] * 360) <= 1
    fit = ScreenFit.of(layout.positions, 640, 360)
    assert 2.0 <= fit.radius_px <= 10.0 and fit.marker_radius[0] > fit.radius[0]


def test_bad_settings_are_refused(state: RenderState, crepe: Ear, layout: Layout) -> None:
    with pytest.raises(BadRequest):
        state.view = "cubism"
    with pytest.raises(BadRequest):
        state.colormap = "jet"
    with pytest.raises(BadRequest):
        state.set_vector("colour", [1.0])
    with pytest.raises(BadRequest):
        state.set_vector("tags", [np.nan])
    with pytest.raises(BadRequest):
        state.mode = "loud"
    for name, value in (("tau", 0.0), ("gain", -1.0), ("decay", np.nan), ("glow", 9.0), ("speed", 1.0)):
        with pytest.raises(BadRequest):
            state.set_number(name, value)
    assert (state.view, state.colormap, state.mode) == ("layout", "magma", "change")
    assert (state.tau, state.gain) == (1.0, 1.0)
    other = dataclasses.replace(layout, layer_names=tuple(reversed(layout.layer_names)))
    with pytest.raises(EarsightError):
        RenderState(crepe, other)  # a layout of another ear
