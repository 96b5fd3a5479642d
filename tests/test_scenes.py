"""Scenes: the file format (pure), then a real server with its view saving, changing and recalling them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import OscClient, make_server, wait_until

from earsight.app import App
from earsight.commands import BY_ADDRESS, COMMANDS
from earsight.errors import BadRequest
from earsight.features import Embedding
from earsight.scenes import FORMAT, VERSION, Scene, decode, encode

# ---------------------------------------------------------------- the file


def test_every_glide_is_a_number_and_every_scene_setting_a_setter_or_a_choice() -> None:
    kinds = {c.address: c.scene for c in COMMANDS if c.scene}
    assert kinds["/ear/view/tau"] == "glide" and kinds["/ear/model/load"] == "switch"
    assert "/ear/sonify/dry" not in kinds  # an alias of /ear/output/mix, which the scene holds
    assert all(a.type == "n" for c in COMMANDS if c.scene == "glide" for a in c.args)
    assert not [c.address for c in COMMANDS if c.scene and c.reply != "/ear/done"]


def test_a_scene_goes_through_its_file_unchanged() -> None:
    rng = np.random.default_rng(0)
    emb = Embedding("conv5", rng.normal(size=256), rng.normal(size=(3, 256)), rng.normal(size=3), rng.normal(size=3))
    scene = Scene({"/ear/view/tau": [2.5], "/ear/select": ["conv6", 1, 2], "/ear/output/mix": [1.0, 0.25]},
                  {"subscribers": [{"host": "127.0.0.1", "port": 57120, "format": "list", "bundle": 0,
                                    "streams": {"pitch": 20.0}}],
                   "embedding": emb, "bed": {"sounds": ["rain", "wind"], "weights": [0.7, 0.3]}})
    text = encode(scene)
    data = json.loads(text)
    assert data["format"] == FORMAT and data["version"] == VERSION and data["settings"]["/ear/view/tau"] == [2.5]
    back = decode(text, BY_ADDRESS, "scene 't'")
    assert back.settings == scene.settings
    assert back.parts["subscribers"] == scene.parts["subscribers"] and back.parts["bed"] == scene.parts["bed"]
    for name in ("mean", "components", "lo", "hi"):  # float64 both ways: exact
        assert np.array_equal(getattr(back.parts["embedding"], name), getattr(emb, name))


def _scene_text(**changes: object) -> str:
    data: dict[str, object] = {"format": FORMAT, "version": VERSION, "settings": {"/ear/view/tau": [2.0]}}
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(("text", "reason"), [
    ("{not json", "not JSON"),
    ('["a list"]', "field 'format'"),
    (_scene_text(format="something else"), "field 'format'"),
    (_scene_text(version=VERSION + 1), "field 'version' is 2: saved by a newer earsight"),
    (_scene_text(version="1"), "field 'version'"),
    (_scene_text(settings={"/ear/view/brightness": [1.0]}), "field settings['/ear/view/brightness'] is not a setting"),
    (_scene_text(settings={"/ear/view/snapshot": ["x.png"]}), "field settings['/ear/view/snapshot'] is not a setting"),
    (_scene_text(settings={"/ear/view/tau": ["slow"]}), "field settings['/ear/view/tau']: seconds must be a number"),
    (_scene_text(settings={"/ear/view/tau": 2.0}), "must be a list of arguments"),
    (_scene_text(settings={"/ear/output/mix": [1.0]}), "field settings['/ear/output/mix']: missing argument wet"),
    (_scene_text(colour="red"), "field 'colour' is not one this version keeps"),
    (_scene_text(subscribers=[{"host": "127.0.0.1", "port": 9, "format": "list", "bundle": 0,
                               "streams": {"smell": 1.0}}]), "field 'subscribers': unknown stream 'smell'"),
    (_scene_text(subscribers=[{"host": "127.0.0.1"}]), "field 'subscribers': missing 'port'"),
    (_scene_text(embedding={"layer": "conv5", "dims": 2, "units": 4, "mean": "AAAA", "lo": "", "hi": "",
                            "components": ""}), "field 'embedding'"),
    (_scene_text(bed={"sounds": ["rain"], "weights": [0.5, 0.5]}), "field 'bed'"),
])
def test_a_corrupt_or_foreign_scene_is_refused_naming_the_field(text: str, reason: str) -> None:
    with pytest.raises(BadRequest, match="scene 't'") as err:
        decode(text, BY_ADDRESS, "scene 't'")
    assert reason in str(err.value)


def test_a_scene_of_an_older_version_without_some_fields_loads() -> None:
    scene = decode(_scene_text(), BY_ADDRESS, "scene 'old'")
    assert scene.settings == {"/ear/view/tau": [2.0]} and scene.parts == {}  # the rest is left as it is


# ---------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """A server with its view, writing under a folder of its own (conftest's ``client`` talks to it)."""
    app = make_server(view_port=0, out_dir=tmp_path_factory.mktemp("scenes"))
    try:
        yield app
    finally:
        app.stop()


def show(client: OscClient, name: str | None = None) -> dict[str, list[object]]:
    """``/ear/scene/show``: its lines by their first word."""
    client.drain()
    client.send("/ear/scene/show", *([name] if name else []))
    lines: dict[str, list[object]] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for address, args in client.receive(0.5):
            if address == "/ear/fail":
                raise AssertionError(args)
            if address == "/ear/scene/show.reply":
                lines[str(args[0])] = args[1:]
            if address == "/ear/done" and args[0] == "/ear/scene/show":
                assert args[1] == len(lines)
                return lines
    raise AssertionError("no /ear/done /ear/scene/show")


def close(a: list[object], b: list[object]) -> bool:
    """Equal arguments (OSC floats are 32-bit)."""
    return len(a) == len(b) and all(
        abs(float(x) - float(y)) < 1e-5 * max(1.0, abs(float(y))) if isinstance(y, (int, float)) else x == y  # type: ignore[arg-type]
        for x, y in zip(a, b, strict=True))


VERSE = [
    ("/ear/view/tau", 2.0), ("/ear/view/colormap", "viridis"), ("/ear/output/mix", 1.0, 0.5),
    ("/ear/sonify/strength", 0.5), ("/ear/sonify/window", 0.6), ("/ear/sonify/chunk", 0.3), ("/ear/top", 3, 0.2),
    ("/ear/select", "conv6", 1, 2), ("/ear/match/level", 0.5), ("/ear/input/gain", 1.0),
]
CHANGES = [
    ("/ear/view/tau", 8.0), ("/ear/view/colormap", "gray"), ("/ear/output/mix", 0.2, 0.1),
    ("/ear/sonify/chunk", 0.1), ("/ear/sonify/window", 0.3), ("/ear/sonify/strength", 2.0),
    ("/ear/select", "conv5", 0), ("/ear/match/level", 2.0), ("/ear/input/gain", 3.0),
]


def test_a_scene_is_saved_changed_and_recalled_with_a_fade(client: OscClient, server: App) -> None:
    for command in VERSE:
        client.request(*command)
    client.request("/ear/notify")
    client.request("/ear/stream", "pitch", 20.0)
    client.request("/ear/embed/fit", "conv5", 1.0, 4, timeout=30)
    saved = client.request("/ear/scene/save", "verse")
    assert saved[1] == "verse" and Path(str(saved[2])) == server.dispatcher.folders.out_dir / "scenes" / "verse.json"
    data = json.loads(Path(str(saved[2])).read_text())  # readable JSON: the settings as their commands
    assert data["settings"]["/ear/view/colormap"] == ["viridis"] and data["settings"]["/ear/select"] == ["conv6", 1, 2]
    assert {"port": client.port, "streams": {"pitch": 20.0}}.items() <= data["subscribers"][0].items()
    verse = show(client, "verse")
    assert verse == show(client)  # saved as it is

    for command in CHANGES:
        client.request(*command)
    client.request("/ear/stream", "pitch", 0.0)
    client.request("/ear/stream", "level", 10.0)
    client.request("/ear/embed/fit", "conv6", 1.0, 2, timeout=30)
    assert show(client)["/ear/view/colormap"] == ["gray"]
    client.request("/ear/scene/save", "chorus")

    client.drain()
    client.send("/ear/scene/recall", "verse", 1.5)
    mid: list[float] = []
    start = time.monotonic()
    while time.monotonic() - start < 1.2:  # gliding: the gain passes between 3 and 1
        mid.append(server.audio.gain)
        time.sleep(0.05)
    assert any(1.05 < g < 2.95 for g in mid), mid
    assert server.display is not None
    assert server.display.settings()["/ear/view/colormap"] == ["gray"], "a choice switches at the end of the fade"
    assert client.expect("/ear/done", timeout=30) == ["/ear/scene/recall", "verse"]
    now = show(client)
    assert now.keys() == verse.keys()
    for key, args in verse.items():
        assert close(now[key], args), (key, now[key], args)
    assert now["embedding"] == ["conv5", 4]
    assert server.streams.subscribers[("127.0.0.1", client.port)].rates == {"pitch": 20.0}
    assert client.request("/ear/scene/list", reply="/ear/scene/list.reply") == ["chorus", "verse"]

    # Back to the chorus: its window (0.3 s) is too short for the verse's chunk (0.3 s): the chunk
    # is set first, then the window is tried again.
    client.request("/ear/scene/recall", "chorus")
    assert server.sonifier.values["window"] == pytest.approx(0.3) and server.sonifier.values["chunk"] == pytest.approx(0.1)
    assert show(client)["embedding"] == ["conv6", 2] and server.audio.gain == pytest.approx(3.0)


def test_a_new_ear_is_switched_first_and_a_corrupt_scene_loses_nothing(client: OscClient, server: App) -> None:
    for command in VERSE:
        client.request(*command)
    client.request("/ear/scene/save", "crepe")
    client.request("/ear/model/load", "musicnn", timeout=120)
    client.request("/ear/select", "tags", 3, 4)
    client.request("/ear/scene/save", "musicnn")
    client.request("/ear/scene/recall", "crepe", timeout=120)  # crepe first, then its selection
    assert server.state.name == "crepe" and server.state.selection.layer == "conv6"
    client.request("/ear/scene/recall", "musicnn", 0.2, timeout=120)
    assert server.state.name == "musicnn" and server.state.selection.channels == (3, 4)
    client.request("/ear/scene/recall", "crepe", timeout=120)
    before = show(client)
    folder = server.dispatcher.folders.out_dir / "scenes"
    crepe = (folder / "crepe.json").read_bytes()

    # Corrupt files: refused before anything changes, and the saved scenes are left alone.
    (folder / "torn.json").write_text(crepe.decode()[: len(crepe) // 2])
    data = json.loads(crepe)
    data["settings"]["/ear/view/tau"] = [9999.0]  # a number, refused by the view only when set
    data["settings"]["/ear/view/colormap"] = ["inferno"]
    (folder / "wrong.json").write_text(json.dumps(data))
    data["settings"]["/ear/view/tau"] = [5.0]
    data["settings"]["/ear/select"] = ["conv6", 99]  # conv6 has 64 channels
    (folder / "late.json").write_text(json.dumps(data))
    for name, reason in (("torn", "not JSON"), ("wrong", "/ear/view/tau"), ("late", "/ear/select"),
                         ("absent", "no scene 'absent'"), ("../crepe", "scene names are")):
        client.drain()
        client.send("/ear/scene/recall", name, 0.3)
        fail = client.expect("/ear/fail", timeout=60)
        assert fail[0] == "/ear/scene/recall" and reason in str(fail[1]), fail
        assert wait_until(lambda: show(client) == before, timeout=10), "a refused scene changed something"
    assert (folder / "crepe.json").read_bytes() == crepe
    client.request("/ear/ping", reply="/ear/pong")

    client.request("/ear/scene/delete", "torn")
    assert "torn" not in client.request("/ear/scene/list", reply="/ear/scene/list.reply")
    client.drain()
    client.send("/ear/scene/delete", "torn")
    assert "no scene 'torn'" in str(client.expect("/ear/fail")[1])


def test_a_later_recall_supersedes_one_still_fading(client: OscClient, server: App) -> None:
    client.request("/ear/input/gain", 1.0)
    client.request("/ear/scene/save", "soft")
    client.request("/ear/input/gain", 4.0)
    client.request("/ear/scene/save", "loud")
    client.drain()
    client.send("/ear/scene/recall", "soft", 20.0)
    assert wait_until(lambda: server.audio.gain < 3.9, timeout=5)
    client.send("/ear/scene/recall", "loud", 0.0)
    answers: dict[str, list[object]] = {}
    deadline = time.monotonic() + 20
    while len(answers) < 2 and time.monotonic() < deadline:  # the two answers, in either order
        answers.update((a, args) for a, args in client.receive(0.5) if a in ("/ear/fail", "/ear/done"))
    assert "superseded" in str(answers["/ear/fail"][1]) and answers["/ear/done"] == ["/ear/scene/recall", "loud"]
    assert server.audio.gain == pytest.approx(4.0)


def test_a_scene_holds_every_setting_the_table_marks_and_nothing_else(server: App) -> None:
    assert set(server.scenes.capture().settings) == {c.address for c in COMMANDS if c.scene}


def test_a_scene_of_more_tracks_than_the_server_has_sets_what_it_can(client: OscClient, server: App) -> None:
    folder = server.dispatcher.folders.out_dir / "scenes"
    folder.mkdir(exist_ok=True)
    (folder / "band.json").write_text(json.dumps({
        "format": FORMAT, "version": VERSION,
        "settings": {"/ear/view/tau": [3.0], "/ear/2/select": ["conv6", 1], "/ear/2/model/load": ["crepe"]},
        "tracks": {"2": {"subscribers": [], "embedding": None}},
    }))
    assert client.request("/ear/scene/recall", "band", timeout=30) == ["/ear/scene/recall", "band", "track 2"]
    assert server.display is not None and server.display.settings()["/ear/view/tau"] == [3.0]
    (folder / "band.json").write_text(json.dumps({"format": FORMAT, "version": VERSION,
                                                  "settings": {"/ear/2/view": ["layout"]}}))
    client.drain()
    client.send("/ear/scene/recall", "band")
    assert "settings['/ear/2/view'] is not a setting" in str(client.expect("/ear/fail")[1])
