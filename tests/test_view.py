"""The web view: a real HTTP server, a real browser (headless Chromium), a real renderer."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from earsight.ears import registry
from earsight.layout import get_layout
from earsight.render import Renderer
from earsight.view import ViewServer


@pytest.fixture(scope="module")
def renderer() -> Iterator[Renderer]:
    ear = registry.load("crepe")
    r = Renderer(ear, get_layout(ear, progress=False), width=640, height=360)
    try:
        x = np.zeros(ear.sample_rate // 2, np.float32)
        x[:: ear.sample_rate // 8] = 0.9
        frames = ear.analyse(x)
        for i in range(frames["conv1"].shape[0]):
            r.update({k: v[i] for k, v in frames.items()})
        r.draw()
        assert r.ctx.error == "GL_NO_ERROR"
        yield r
        assert r.ctx.error == "GL_NO_ERROR"
    finally:
        r.close()


@pytest.fixture
def server(renderer: Renderer) -> Iterator[tuple[ViewServer, list[tuple[str, list[int]]]]]:
    calls: list[tuple[str, list[int]]] = []

    def on_select(layer: str, channels: list[int]) -> None:
        renderer.select(layer, channels)  # raises for bad requests: the page gets a 400
        calls.append((layer, channels))

    view = ViewServer("127.0.0.1", 0, renderer.jpeg, renderer.layout_dict, on_select)
    view.start()
    try:
        yield view, calls
    finally:
        view.stop()


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.headers["Content-Type"], response.read()


def post(url: str, body: bytes, **headers: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", **headers}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_page_layout_and_frames(server: tuple[ViewServer, list], renderer: Renderer) -> None:
    view, _ = server
    status, kind, page = get(view.url)
    assert status == 200 and kind.startswith("text/html") and b"/layout.json" in page
    status, kind, body = get(view.url + "layout.json")
    layout = json.loads(body)
    assert layout["layers"] == renderer.ear.layer_names
    assert len(layout["x"]) == len(layout["y"]) == len(layout["channel"]) == renderer.layout.n
    assert 0 <= min(layout["x"]) and max(layout["x"]) <= 1
    status, kind, jpeg = get(view.url + "frame.jpg")
    assert kind == "image/jpeg" and jpeg[:2] == b"\xff\xd8"
    with urllib.request.urlopen(view.url + "stream.mjpg", timeout=10) as stream:
        assert stream.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        head = stream.read(200)
        assert head.startswith(b"--earsightframe\r\nContent-Type: image/jpeg")
    with pytest.raises(urllib.error.HTTPError):
        get(view.url + "nothing")


def test_select_calls_back_and_refuses_nonsense(server: tuple[ViewServer, list], renderer: Renderer) -> None:
    view, calls = server
    status, reply = post(view.url + "select", json.dumps({"layer": "conv2", "channels": [3, 4.0]}).encode())
    assert status == 200 and reply["ok"] is True
    assert calls == [("conv2", [3, 4])]
    assert renderer.selection == ("conv2", [3, 4])
    for bad in (b"{not json", json.dumps({"channels": [1]}).encode(),
                json.dumps({"layer": "conv2", "channels": [99]}).encode(),
                json.dumps({"layer": "conv2", "channels": [1.5]}).encode(), b'"a string"', b"[1, 2]"):
        status, reply = post(view.url + "select", bad)
        assert status == 400 and reply["ok"] is False, bad
    assert calls == [("conv2", [3, 4])]


def test_headless_chromium_shows_the_layout(server: tuple[ViewServer, list], renderer: Renderer) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed")
    view, _ = server
    renderer.select("conv3", [5])
    renderer.draw()
    with tempfile.TemporaryDirectory() as profile, tempfile.TemporaryDirectory() as out:
        shot = Path(out) / "page.png"
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-quic", f"--user-data-dir={profile}", f"--screenshot={shot}",
               "--window-size=1280,720", view.url]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, err = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert shot.is_file(), err.decode(errors="replace")[-2000:]
        image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape == (720, 1280, 3)
    # Dark page, lit neurons: plenty of pixels well above the background...
    lit = image.max(axis=2) > 60
    assert lit.sum() > 1000
    # ... among them the highlighted channel's markers (cyan: green and blue high, red low).
    cyan = (image[..., 1] > 180) & (image[..., 2] > 150) & (image[..., 0] < 90)
    assert cyan.sum() > 100


def test_a_page_on_another_site_cannot_select(server: tuple[ViewServer, list], renderer: Renderer) -> None:
    view, calls = server
    body = json.dumps({"layer": "conv2", "channels": [7]}).encode()
    port = view.url.rstrip("/").rsplit(":", 1)[1]
    for headers in (
        {"Origin": "http://evil.example"},  # a page elsewhere, in the user's browser
        {"Origin": "null"},  # a sandboxed frame or a file: page
        {"Host": f"evil.example:{port}"},  # DNS rebinding: the attacker's name, our address
    ):
        status, reply = post(view.url + "select", body, **headers)
        assert status == 403 and reply["ok"] is False, headers
    assert calls == [] and renderer.selection != ("conv2", [7])
    # The page itself (same origin), and programs that send no Origin, may.
    assert post(view.url + "select", body, Origin=view.url.rstrip("/"))[0] == 200
    assert post(view.url + "select", body, Host=f"localhost:{port}")[0] == 200
