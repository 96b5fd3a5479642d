"""How activations become light, without GL: known answers for the running normalisation and the glow."""

from __future__ import annotations

import numpy as np
import pytest

from earsight.ears.base import Ear
from earsight.layout import get_layout
from earsight.render.glow import Glow
from earsight.render.normalise import RunningNorm, ew_alpha, light, smooth
from earsight.render.state import RenderState

FLOOR = 0.01


def norm(n: int = 3) -> RunningNorm:
    return RunningNorm(np.full(n, FLOOR, np.float32))


def run(r: RunningNorm, values: list[float], dt: float, tau: float) -> np.ndarray:
    """Feed a sequence of equal frames per value; returns the first neuron's light after each."""
    return np.array([light(r(np.full(r.floor.shape, v, np.float32), dt, tau), 1.0)[0] for v in values])


def test_the_weight_of_a_frame_does_not_depend_on_the_frame_rate() -> None:
    # Ten steps of 10 ms leave as much of the old level as one step of 100 ms.
    assert (1 - ew_alpha(0.01, 0.5)) ** 10 == pytest.approx(1 - ew_alpha(0.1, 0.5), rel=1e-9)
    assert ew_alpha(0.0, 1.0) == 0.0 and ew_alpha(0.1, 0.0) == 1.0


@pytest.mark.parametrize("level", [0.0, 5.0, -3.0, 1e4])
def test_a_constant_input_is_dark_whatever_its_level(level: float) -> None:
    r = norm()
    assert np.all(run(r, [level] * 50, 0.01, 1.0) == 0.0)


def test_a_constant_input_after_a_change_goes_dark() -> None:
    r = norm()
    lights = run(r, [0.0] * 10 + [1.0] * 2000, 0.01, 1.0)
    assert lights[10] == 1.0, "the step lights the neuron at once"
    assert lights[-1] < 0.01, "twenty time constants later it is dark again"
    assert np.all(np.diff(lights[11:]) <= 1e-6), "and it fades without flicker"


def test_a_step_fades_with_the_time_constant() -> None:
    # The same step, seen with tau and 2 tau at the same number of frames per tau: the fade is
    # the same curve stretched twice as long (the frame rate and the time scale do not matter).
    short = run(norm(), [0.0] * 20 + [1.0] * 400, 0.01, 0.5)
    long = run(norm(), [0.0] * 20 + [1.0] * 400, 0.02, 1.0)
    assert np.allclose(short, long, atol=1e-5)
    # The level itself follows the step exponentially: after one tau, e^-1 of the step is left.
    r = norm()
    run(r, [0.0] * 20 + [1.0] * 100, 0.01, 1.0)
    assert 1.0 - r.level[0] == pytest.approx(np.exp(-1.0), rel=1e-4)
    # A longer tau keeps the light longer.
    slow = run(norm(), [0.0] * 20 + [1.0] * 400, 0.01, 2.0)
    assert np.all(slow[20:] >= short[20:] - 1e-6) and slow[-1] > short[-1]


def test_one_big_change_does_not_blind_a_neuron_to_the_next() -> None:
    # Silence, then music 100 floors louder: three tau later a bump of 10 floors still shows
    # brightly, because the spread learns from deviations clipped to CLIP spreads (unclipped,
    # the step would have taught it about 0.2 and the bump would light about 0.24).
    r = norm()
    run(r, [0.0] * 100 + [1.0] * 300, 0.01, 1.0)
    spread = float(np.sqrt(r.var[0]) + FLOOR)
    assert spread < 0.1, "the step taught the spread far less than its own size"
    bump = light(r(np.full(3, 1.1, np.float32), 0.01, 1.0), 1.0)[0]
    assert bump > 0.5


def test_rise_is_fast_and_fall_follows_the_decay() -> None:
    shown = np.zeros(2, np.float32)
    smooth(shown, np.ones(2, np.float32), 0.1, decay=0.25)
    assert np.all(shown > 0.99), "a rise takes a few hundredths of a second"
    before = float(shown[0])
    smooth(shown, np.zeros(2, np.float32), 0.25, decay=0.25)
    assert shown[0] == pytest.approx(before * np.exp(-1.0), rel=1e-5), "one decay time leaves e^-1"


def test_glow_is_the_regions_mean_light_and_dark_far_from_neurons() -> None:
    rng = np.random.default_rng(0)
    # Two clusters of neurons, left and right; the middle and the corners have none.
    fx = np.concatenate([rng.uniform(0.1, 0.3, 500), rng.uniform(0.7, 0.9, 500)])
    fy = rng.uniform(0.3, 0.7, 1000)
    glow = Glow(fx, fy, 640, 360, spacing_px=6.0)
    left = np.concatenate([np.ones(500), np.zeros(500)])
    g = glow(left)
    rows, cols = g.shape
    mid_row = rows // 2
    assert g[mid_row, int(0.2 * cols)] > 0.9, "a fully lit region glows fully"
    assert g[mid_row, int(0.8 * cols)] < 0.05, "an unlit region stays dark"
    assert g[0, 0] == 0.0 and g[mid_row, cols // 2] < 0.05, "no glow where there are no neurons"
    half = glow(np.full(1000, 0.5))
    assert half[mid_row, int(0.2 * cols)] == pytest.approx(0.5, abs=0.02), "the mean light, not the count"


def test_render_state_modes(crepe: Ear) -> None:
    state = RenderState(crepe, get_layout(crepe, progress=False), width=640, height=360)
    frames = {s.name: np.full(s.shape, 0.3, np.float32) for s in crepe.layers}
    for _ in range(20):
        state.update(frames, dt=0.01)
    assert np.all(state.shown == 0.0), "change mode: a steady input is dark"
    state.mode = "raw"
    loud = {s.name: np.full(s.shape, 1e6, np.float32) for s in crepe.layers}
    state.update(frames, dt=0.01)
    state.update(loud, dt=1.0)
    assert np.all(state.target == 1.0) and np.all(state.shown > 0.99), "raw mode: a loud input is bright"
