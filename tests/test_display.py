"""The live picture: the display around a plain ear state (no pyo, no OSC), then in a running
server (OSC view commands, snapshots that follow the input, the page)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import OscClient, make_server, wait_until
from PIL import Image

from earsight.app import App
from earsight.audio import Source
from earsight.cli import running_server
from earsight.display import Display
from earsight.ears.base import Ear
from earsight.features import Selection
from earsight.state import EarState


def post_selection(url: str, layer: str, channels: list[int]) -> int:
    body = json.dumps({"layer": layer, "channels": channels}).encode()
    request = urllib.request.Request(url + "select", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def test_the_display_reads_a_state_and_a_click_selects_through_it(crepe: Ear, tmp_path: Path) -> None:
    state = EarState("crepe", crepe)
    display = Display(state, port=0, size=(320, 180))
    display.start()
    try:
        renderer = display._ready()
        assert renderer.selection == ("", [])
        # A click asks the state; the state's listeners tell the display, which highlights.
        assert post_selection(display.server.url, "conv2", [3]) == 200
        assert state.selection == Selection("conv2", (3,))
        assert renderer.selection == ("conv2", [3])
        assert post_selection(display.server.url, "conv2", [99]) == 400
        assert state.selection == Selection("conv2", (3,))
        # The display feeds the state's newest frame to the picture.
        x = np.zeros(crepe.sample_rate // 2, np.float32)
        x[:: crepe.sample_rate // 8] = 0.9
        frames = crepe.analyse(x)
        # The first frame the picture sees is its neurons' level (change mode): silence first.
        silence = crepe.analyse(np.zeros(crepe.hop, np.float32))
        state.publish({k: v[-1] for k, v in silence.items()})
        deadline = time.monotonic() + 10
        while not renderer.state.norm.seen.all() and time.monotonic() < deadline:
            time.sleep(0.05)
        state.publish({k: v[-1] for k, v in frames.items()})
        before = renderer.state.shown.copy()
        deadline = time.monotonic() + 10
        while np.array_equal(renderer.state.shown, before) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not np.array_equal(renderer.state.shown, before)
        # A snapshot is written where the server's folders said.
        assert display.snapshot(tmp_path / "shot.png") == tmp_path / "shot.png"
        assert Image.open(tmp_path / "shot.png").size == (320, 180)
        # Another ear (here: the same under a new name) is built anew, keeping the selection.
        state.set_ear("crepe-again", crepe)
        rebuilt = display._ready()
        assert rebuilt is not renderer and rebuilt.selection == ("conv2", [3])
    finally:
        display.stop()


def test_the_picture_slows_down_while_the_machine_is_behind_and_recovers(crepe: Ear) -> None:
    behind = {"now": True}
    display = Display(EarState("crepe", crepe), port=0, size=(160, 90), fps=40.0, overloaded=lambda: behind["now"])
    display.start()
    try:
        display._ready()
        deadline = time.monotonic() + 15
        while display.fps_live > 5.0 and time.monotonic() < deadline:
            display._jpeg()  # a viewer keeps watching
            time.sleep(0.1)
        assert display.fps_live == 5.0 and display.slowed == 3  # 40 -> 20 -> 10 -> 5, once a second
        drawn, start = display.frames_drawn, time.monotonic()
        while time.monotonic() - start < 2.0:
            display._jpeg()
            time.sleep(0.1)
        assert display.frames_drawn - drawn <= 2.0 * 5.0 + 2, "at most the slowed rate"
        behind["now"] = False
        deadline = time.monotonic() + 15
        while display.fps_live < 40.0 and time.monotonic() < deadline:
            display._jpeg()
            time.sleep(0.1)
        assert display.fps_live == 40.0
    finally:
        display.stop()


@pytest.fixture(scope="module")
def viewed() -> Iterator[App]:
    app = make_server(Source("silence"), view_port=0)
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture
def osc(viewed: App) -> Iterator[OscClient]:
    c = OscClient(viewed.osc.address)
    try:
        yield c
    finally:
        c.close()


def snapshot(osc: OscClient, path: Path) -> np.ndarray:
    # the first one builds the renderer: 2 s on an idle machine, 16 s beside two busy loops
    done = osc.request("/ear/view/snapshot", str(path), timeout=60)
    assert done[1] == str(path)
    return np.asarray(Image.open(path).convert("RGB"), np.float32)


def test_snapshots_follow_the_input(osc: OscClient, tmp_path: Path) -> None:
    osc.request("/ear/input", "silence")
    time.sleep(1.0)
    quiet = snapshot(osc, tmp_path / "silence.png")
    osc.request("/ear/input", "test", "clicks", 20.0)
    time.sleep(1.0)
    shots: list[np.ndarray] = []

    def differs() -> bool:  # a busy machine hears the clicks later: wait for them, not for a time
        shots.append(snapshot(osc, tmp_path / "clicks.png"))
        return bool(np.abs(shots[-1] - quiet).mean() > 1.0)

    wait_until(differs, timeout=20, every=0.5)
    clicks = shots[-1]
    assert quiet.shape == clicks.shape == (720, 1280, 3)
    assert np.abs(clicks - quiet).mean() > 1.0  # mean difference per pixel channel, 0-255


def test_selected_neurons_are_highlighted(osc: OscClient, viewed: App, tmp_path: Path) -> None:
    osc.request("/ear/select", "conv2", 3)
    display = viewed.display
    assert display is not None
    renderer = display._ready()
    neurons = renderer.selected_neurons()
    assert neurons.size == viewed.state.ear.layer("conv2").size // 16  # one channel's positions
    image = snapshot(osc, tmp_path / "selected.png")
    osc.request("/ear/view/highlight", "conv2")  # clear
    plain = snapshot(osc, tmp_path / "plain.png")
    x, y = renderer.pixel_of(int(neurons[len(neurons) // 2]))
    assert np.abs(image[y - 2 : y + 3, x - 2 : x + 3] - plain[y - 2 : y + 3, x - 2 : x + 3]).max() > 40


def test_views_and_colour_maps_switch_and_bad_names_fail(osc: OscClient, tmp_path: Path) -> None:
    images = {}
    for view in ("layout", "hallucination", "features"):
        osc.request("/ear/view", view)
        images[view] = snapshot(osc, tmp_path / f"{view}.png")
    assert np.abs(images["layout"] - images["hallucination"]).mean() > 5
    assert np.abs(images["hallucination"] - images["features"]).mean() > 5
    osc.request("/ear/view", "layout")
    osc.request("/ear/view/colormap", "viridis")
    perm = osc.request("/ear/view/shuffle", 7)[1:]
    assert sorted(perm) == list(range(10))
    osc.send("/ear/view", "cubism")
    assert "unknown view" in str(osc.expect("/ear/fail")[1])
    osc.send("/ear/view/colormap", "rainbow")
    assert osc.expect("/ear/fail")[0] == "/ear/view/colormap"
    osc.send("/ear/view/size", 10, 10)
    assert "size must be" in str(osc.expect("/ear/fail")[1])
    osc.send("/ear/view/snapshot", "picture.gif")
    assert "must end in .png" in str(osc.expect("/ear/fail")[1])
    for escape in ("/root/escape.png", "../../../../../root/escape.png"):  # outside the output folder
        osc.send("/ear/view/snapshot", escape)
        assert "files are written only under" in str(osc.expect("/ear/fail")[1])
    assert not Path("/root/escape.png").exists()


def test_light_settings_over_osc_change_the_picture_and_bad_values_fail(
    osc: OscClient, viewed: App, tmp_path: Path
) -> None:
    osc.request("/ear/input", "test", "clicks", 4.0)
    time.sleep(1.5)
    change = snapshot(osc, tmp_path / "change.png")
    osc.request("/ear/view/mode", "raw")
    osc.request("/ear/view/labels", 0)
    for address, value in (("/ear/view/tau", 3.0), ("/ear/view/gain", 2.0), ("/ear/view/decay", 0.5), ("/ear/view/glow", 0.0)):
        osc.request(address, value)
    display = viewed.display
    assert display is not None
    renderer = display._ready()
    assert (renderer.mode, renderer.labels, renderer.tau, renderer.gain, renderer.decay, renderer.glow) == (
        "raw", False, 3.0, 2.0, 0.5, 0.0)
    time.sleep(0.5)
    raw = snapshot(osc, tmp_path / "raw.png")
    assert np.abs(raw - change).mean() > 2.0
    for address, value in (("/ear/view/mode", "loud"), ("/ear/view/tau", 0.0), ("/ear/view/gain", -1.0), ("/ear/view/glow", 99.0)):
        osc.send(address, value)
        assert osc.expect("/ear/fail")[0] == address
    assert (renderer.mode, renderer.tau, renderer.gain, renderer.glow) == ("raw", 3.0, 2.0, 0.0), "refused values change nothing"
    osc.request("/ear/view/mode", "change")
    osc.request("/ear/view/labels", 1)
    osc.request("/ear/view/glow", 1.5)


def test_the_page_serves_frames_and_the_layout_and_a_click_selects(osc: OscClient, viewed: App) -> None:
    url = osc.request("/ear/view/url", reply="/ear/view/url.reply")[0]
    assert isinstance(url, str) and url.startswith("http://127.0.0.1:")
    layout = json.load(urllib.request.urlopen(url + "layout.json", timeout=30))
    assert layout["ear"] == "crepe" and len(layout["x"]) == sum(layer.size for layer in viewed.state.ear.layers)
    first = urllib.request.urlopen(url + "frame.jpg", timeout=10).read()
    time.sleep(0.5)  # watched now: the display draws
    jpeg = urllib.request.urlopen(url + "frame.jpg", timeout=10).read()
    assert jpeg[:2] == b"\xff\xd8" and len(jpeg) > len(first) // 2
    assert viewed.display is not None and viewed.display.frames_drawn > 0
    body = json.dumps({"layer": "conv4", "channels": [1, 2]}).encode()
    request = urllib.request.Request(url + "select", data=body, headers={"Content-Type": "application/json"})
    assert json.load(urllib.request.urlopen(request, timeout=10))["ok"] is True
    assert viewed.state.selection.layer == "conv4" and viewed.state.selection.channels == (1, 2)


def test_serve_with_a_window_under_xvfb(xvfb: str, tmp_path: Path) -> None:
    args = ("--backend", "manual", "--view-port", "0", "--window", "--input", "test", "--test", "clicks", "--value", "10",
            "--out-dir", str(tmp_path))
    with running_server(*args, env={"DISPLAY": xvfb}) as server:
        client = OscClient(server.address)
        try:
            image = snapshot(client, tmp_path / "window.png")
            assert image.max() > 60
            assert client.request("/ear/view/layout", 1)[1:] == [1]  # laid out anew, in the window too
            assert "rendering headless" not in server.log.read_text()
        finally:
            client.close()
