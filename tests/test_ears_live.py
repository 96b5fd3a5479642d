"""Every ear in the running server: switching while audio plays, and the streams each ear gives."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import OscClient, make_server

from earsight.app import App
from earsight.audio import Source, pyo_example_sound
from earsight.ears import registry


@pytest.fixture(scope="module")
def drums() -> Iterator[App]:
    """A server listening to pyo's drum loop (found in the pyo wheel's examples)."""
    app = make_server(Source("file", str(pyo_example_sound("drumloop.wav"))))
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture
def client(drums: App) -> Iterator[OscClient]:
    c = OscClient(drums.osc.address)
    try:
        yield c
    finally:
        c.close()


def test_earsight_ears_lists_every_ear(capsys: pytest.CaptureFixture[str]) -> None:
    from earsight.cli import main

    assert main(["ears"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in registry.names())


def test_switching_ears_while_audio_plays_keeps_the_sound_and_the_streams(client: OscClient, drums: App) -> None:
    client.request("/ear/notify")
    client.request("/ear/stream", "layers", 100)
    before = drums.audio.stats()
    drums.audio.monitor.read()
    for name in ("musicnn", "cpc", "crepe"):
        client.request("/ear/model/load", name)
        info = client.request("/ear/model/info", reply="/ear/model/info.reply")
        assert info[1] == name
        n_layers = int(info[info.index("layers") + 1])  # type: ignore[arg-type]
        client.request("/ear/stream", "layers", 100)
        deadline = time.monotonic() + 20
        got: list[object] = []
        while time.monotonic() < deadline and not got:
            got = [args for addr, args in client.receive(1.0) if addr == "/ear/layers" and len(args) == n_layers]
        assert got, f"no layers stream from {name}"
    played = drums.audio.monitor.read()
    after = drums.audio.stats()
    assert after["input_dropped"] == before["input_dropped"]
    assert after["restarts"] == before["restarts"]
    # The loop plays on: no block of silence in what the server played during the switches.
    blocks = played[: played.shape[0] // 256 * 256, 0].reshape(-1, 256)
    assert (np.abs(blocks).max(axis=1) == 0).sum() == 0


def test_musicnn_tags_and_top_hear_the_drums(client: OscClient) -> None:
    client.request("/ear/model/load", "musicnn")
    info = client.request("/ear/model/info", reply="/ear/model/info.reply")
    assert info[info.index("labels") + 1] == 50
    client.request("/ear/notify", client.port, "flat", 0)
    client.request("/ear/stream", "tags", 10)
    client.request("/ear/top", 3, 0.05)
    client.request("/ear/stream", "top", 10)
    time.sleep(4.0)  # a whole 3 s window of drums
    client.drain()
    tags: dict[str, float] = {}
    top: dict[str, float] = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (len(tags) < 50 or len(top) < 50):
        for addr, args in client.receive(1.0):
            if addr.startswith("/ear/tags/"):
                tags[addr.rsplit("/", 1)[1]] = float(args[0])  # type: ignore[arg-type]
            elif addr.startswith("/ear/top/"):
                top[addr.rsplit("/", 1)[1]] = float(args[0])  # type: ignore[arg-type]
    assert len(tags) == 50 and len(top) == 50
    best = sorted(tags, key=tags.__getitem__, reverse=True)[:3]
    assert {"drums", "beat"} & set(best), best
    assert 1 <= sum(v > 0 for v in top.values()) <= 3
    client.request("/ear/stream", "pitch", 0)
    client.send("/ear/stream", "pitch", 10)  # musicnn has no pitch
    assert "does not hear pitch" in str(client.expect("/ear/fail")[1])
    client.request("/ear/model/load", "crepe")


def test_the_cpc_ear_streams_its_activations(client: OscClient) -> None:
    client.request("/ear/model/load", "cpc")
    client.request("/ear/notify")
    client.request("/ear/select", "ar", 0, 1, 2, 3)
    client.request("/ear/stream", "act", 50)
    deadline = time.monotonic() + 10
    frames: list[list[object]] = []
    while time.monotonic() < deadline and len(frames) < 20:
        frames += [args for addr, args in client.receive(1.0) if addr == "/ear/act"]
    values = np.array(frames[:20], float)
    assert values.shape == (20, 4) and np.all(np.isfinite(values)) and values.std() > 0
    client.send("/ear/stream", "tags", 10)
    assert "has no labels" in str(client.expect("/ear/fail")[1])
    client.request("/ear/model/load", "crepe")


def test_an_ear_you_trained_joins_the_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from earsight.paths import models_dir

    monkeypatch.setenv("EARSIGHT_CACHE", str(tmp_path))
    (tmp_path / "models").mkdir()
    shutil.copy(models_dir() / "cpc.safetensors", tmp_path / "models" / "mine.safetensors")  # as `earsight train --out mine` leaves it
    (tmp_path / "models" / "notes.safetensors").write_bytes(b"")  # not an ear: ignored
    assert "mine" in registry.names() and "notes" not in registry.names()
    ear = registry.load("mine")
    assert ear.name == "mine" and "ar" in ear.layer_names
    from earsight.cli import main

    assert main(["ears"]) == 0
