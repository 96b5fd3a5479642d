"""The host patches, read without their hosts: generated help in step with the command table, every
OSC address and argument known to the server, Max and Pd files well formed.

The same checks run as ``python patches/patchdoc.py --check``; the mutation tests below make sure
each check can fail.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from conftest import load_patchdoc, project_version

from earsight.commands import BY_ADDRESS, COMMANDS
from earsight.ears import registry
from earsight.features import STREAMS
from earsight.paths import Folders

patchdoc = load_patchdoc()
ROOT = patchdoc.PATCHES
MAXPAT = ROOT / "max" / "earsight" / "patchers" / "earsight.maxpat"
TD_SCRIPT = ROOT / "touchdesigner" / "earsight_td.py"


@pytest.fixture
def patches(tmp_path: Path) -> Path:
    """A copy of the patches folder to break on purpose."""
    shutil.copytree(ROOT, tmp_path / "patches")
    return tmp_path / "patches"


def load_td_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("earsight_td", TD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- the whole check


def test_patchdoc_check_passes() -> None:
    assert patchdoc.check() == []


def test_every_host_folder_exists_with_its_files() -> None:
    for path in (
        "README.md",
        "max/earsight/patchers/earsight.maxpat", "max/earsight/help/earsight.maxhelp", "max/earsight/package-info.json", "max/README.md",
        "supercollider/Earsight.sc", "supercollider/earsight-example.scd", "supercollider/earsight-selftest.scd", "supercollider/README.md",
        "puredata/earsight/earsight.pd", "puredata/earsight/earsight-help.pd", "puredata/earsight/earsight-meta.pd", "puredata/earsight-selftest.pd", "puredata/README.md",
        "touchdesigner/earsight_td.py", "touchdesigner/README.md",
    ):
        assert (ROOT / path).is_file(), path


def test_stale_help_is_reported(patches: Path) -> None:
    readme = patches / "supercollider" / "README.md"
    readme.write_text(readme.read_text().replace("`/ear/pong`", "`/ear/pong-old`", 1))
    problems = patchdoc.check(patches)
    assert any("supercollider/README.md: generated help is stale" in p for p in problems)


def test_the_sc_help_page_documents_every_method_and_accessor_from_the_class_comments(patches: Path) -> None:
    source = (ROOT / patchdoc.SC_CLASS).read_text()
    page = (ROOT / patchdoc.SCHELP).read_text()
    methods = patchdoc.sc_methods(source)
    names = {m.name for m in methods}
    assert {"new", "load", "stream", "sonifyParam", "match", "help"} <= names and "init" not in names
    documented = re.findall(r"^method:: (\w+)$", page, re.M)
    declared = re.findall(r"^\t\*?([a-z]\w*) \{", source, re.M)
    assert sorted(documented) == sorted({*declared, "addr", "values", "buses", "defs", "answers", "timeout", "verbose", "track"} - {"init"})
    send = next(m for m in methods if m.name == "send")
    assert send.args == (("address", ""), ("... args", "")) and "no answer awaited" in send.doc
    assert next(m for m in methods if m.name == "new").args == (("host", '"127.0.0.1"'), ("port", "9000"), ("track", "1"))
    for c in COMMANDS:  # the OSC reference comes from the table
        assert f"## code::{c.address}" in page, c.address
    # A method without its comment is a problem, and so is a page out of date.
    sc = patches / patchdoc.SC_CLASS
    sc.write_text(sc.read_text().replace("\t// Fade the bed out and stop following the view.\n", ""))
    problems = patchdoc.check(patches)
    assert f"{patchdoc.SC_CLASS}: method matchOff has no comment above it (the help page is made from it)" in problems
    assert any(f"{patchdoc.SCHELP}: generated help is stale" in p for p in problems)
    (patches / patchdoc.SCHELP).unlink()
    assert any(f"{patchdoc.SCHELP}: generated help is stale" in p for p in patchdoc.check(patches))
    assert patches / patchdoc.SCHELP in patchdoc.write(patches) and (patches / patchdoc.SCHELP).is_file()


def test_the_quark_file_names_the_help_and_the_package_version() -> None:
    quark = (ROOT / "supercollider" / "supercollider.quark").read_text()
    assert f'version: "{project_version()}"' in quark
    assert 'schelp: "Earsight"' in quark and 'name: "earsight"' in quark


def test_the_max_package_is_laid_out_as_max_finds_it_and_its_help_speaks_the_table(patches: Path) -> None:
    package = ROOT / "max" / "earsight"
    info = json.loads((package / "package-info.json").read_text())
    assert info["version"] == project_version() and info["name"] == "earsight"
    assert (package / "help" / info["homepatcher"]).is_file()
    for folder, files in info["filelist"].items():
        assert files and all((package / folder / f).is_file() for f in files), (folder, files)
    device = json.loads(MAXPAT.read_text())["patcher"]
    outlets = patchdoc.device_outlets(device)
    assert outlets[:3] == ["earsight.pitch", "earsight.level", "earsight.act"] and len(outlets) == sum(
        b.get("text") == "outlet" for b in patchdoc.max_boxes(device)
    )
    help_doc = json.loads((package / "help" / "earsight.maxhelp").read_text())["patcher"]
    boxes = patchdoc.max_boxes(help_doc)
    ear = next(b for b in boxes if b.get("text") == "earsight")
    assert ear["numoutlets"] == len(outlets)
    printed = {b["text"] for b in boxes if b.get("text", "").startswith("print ")}
    assert printed == {f"print {name}" for name in outlets}
    comments = " ".join(b["text"] for b in boxes if b["maxclass"] == "comment")
    assert all(c.address in comments for c in COMMANDS) and all(f"stream {name}:" in comments for name in STREAMS)
    assert patchdoc.check_max(package / "help" / "earsight.maxhelp") == []
    # The help's messages are checked like the device's: a wrong type is a problem.
    broken = patches / patchdoc.MAXHELP
    broken.write_text(broken.read_text().replace('"/ear/stream pitch 30"', '"/ear/stream pitch fast"'))
    assert any("[/ear/stream pitch fast]" in p for p in patchdoc.check_max(broken))
    assert any(f"{patchdoc.MAXHELP}: generated help is stale" in p for p in patchdoc.check(patches))


def test_stale_pd_reference_is_reported(patches: Path) -> None:
    help_patch = patches / "puredata" / "earsight" / "earsight-help.pd"
    help_patch.write_text(help_patch.read_text().replace("[ping( - ", "[ping( - old text ", 1))
    assert any("earsight-help.pd: generated help is stale" in p for p in patchdoc.check(patches))


def test_write_brings_stale_help_back(patches: Path) -> None:
    sc = patches / "supercollider" / "Earsight.sc"
    sc.write_text(re.sub(r"\t\t\t\[\"/ear/ping\".*\n", "", sc.read_text()))
    assert patchdoc.check(patches)
    patchdoc.write(patches)
    assert patchdoc.check(patches) == []


def test_unknown_address_in_a_patch_is_reported(patches: Path) -> None:
    example = patches / "supercollider" / "earsight-example.scd"
    example.write_text(example.read_text() + "\n~ear.send('/ear/teleport', 1);\n")
    problems = patchdoc.check(patches)
    assert any("earsight-example.scd: uses /ear/teleport" in p for p in problems)


def test_generated_help_names_every_command_and_stream() -> None:
    for host in ("max", "puredata", "supercollider", "touchdesigner"):
        text = patchdoc.markdown(host)
        for command in COMMANDS:
            assert command.address.removeprefix("/ear/") in text, (host, command.address)
        for stream in STREAMS:
            assert f"| `{stream}` |" in text
    sc = (ROOT / "supercollider" / "Earsight.sc").read_text()
    for command in COMMANDS:
        assert f'["{command.address}", "{command.typetag}", "{command.reply}"' in sc


@pytest.mark.parametrize(
    ("address", "known"),
    [
        ("/ear/ping", True),
        ("/ear/model/load", True),
        ("/ear/pong", True),
        ("/ear/status.reply", True),
        ("/ear/model/info.reply", True),
        ("/ear/synced", True),
        ("/ear/view/url.reply", True),  # replies come from the table, new commands' too
        ("/ear/sonify/status.reply", True),
        ("/ear/sonify/strength", True),
        ("/ear/sonify/strength.reply", False),
        ("/ear/done", True),
        ("/ear/fail", True),
        ("/ear/pitch", True),
        ("/ear/pitch/hz", True),
        ("/ear/act/conv6_3", True),
        ("/ear/layers/*", True),
        ("/ear/pitchy", False),
        ("/ear/pitch/hz/more", False),
        ("/ear/teleport", False),
        ("/ear/model", False),
    ],
)
def test_known_addresses(address: str, known: bool) -> None:
    assert patchdoc.known_address(address) is known


@pytest.mark.parametrize(
    ("address", "args", "ok"),
    [
        ("/ear/stream", ["pitch", 30], True),
        ("/ear/stream", ["pitch", 30.0, 9001], True),
        ("/ear/stream", [30, "pitch"], False),
        ("/ear/stream", ["pitch"], False),
        ("/ear/select", ["conv6", 0, 1, 2, 3], True),
        ("/ear/select", [patchdoc.Placeholder("symbol"), patchdoc.Placeholder("number")], True),
        ("/ear/select", [patchdoc.Placeholder("number")], False),
        ("/ear/output/mix", [patchdoc.Placeholder("number"), patchdoc.Placeholder("number")], True),
        ("/ear/output/mix", [patchdoc.Placeholder("symbol"), 1.0], False),
        ("/ear/sonify", ["dream"], True),
        ("/ear/sonify", [patchdoc.Placeholder("number")], False),
        ("/ear/sonify/strength", [patchdoc.Placeholder("number")], True),
        ("/ear/sonify/strength", [8.0], True),
        ("/ear/sonify/strength", [9.0], False),  # sonify's table gives the range: 0-8
        ("/ear/sonify/param", ["spectrum"], True),
        ("/ear/sonify/param", ["colour"], False),
        ("/ear/sonify", ["sleep"], False),
        ("/ear/sonify/steps", [4.0], True),
        ("/ear/sonify/steps", [4.5], False),
        ("/ear/sonify/render", [5.0, "a.wav"], True),
        ("/ear/sonify/render", ["a.wav"], False),
        ("/ear/view", [patchdoc.Placeholder("symbol")], True),
        ("/ear/view/snapshot", [], True),
        ("/ear/embed/fit", ["conv6", 10, 8], True),
        ("/ear/ping", [1], False),
        ("/ear/nothing", [], False),
    ],
)
def test_check_call(address: str, args: list[object], ok: bool) -> None:
    assert (patchdoc.check_call(address, args) is None) is ok


# ---------------------------------------------------------------- Max


def max_doc() -> dict:  # type: ignore[type-arg]
    return json.loads(MAXPAT.read_text())


def test_max_patcher_is_well_formed_and_speaks_the_table() -> None:
    assert patchdoc.check_max(MAXPAT) == []
    boxes = patchdoc.max_boxes(max_doc()["patcher"])
    ids = [b["id"] for b in boxes]
    assert len(ids) == len(set(ids))
    messages = [b["text"] for b in boxes if b["maxclass"] == "message" and b["text"].startswith("/ear/")]
    assert len(messages) >= 5
    used = {m.split()[0] for text in messages for m in text.split(",") if m.strip()}
    assert {"/ear/notify", "/ear/stream", "/ear/model/load", "/ear/select", "/ear/output/mix"} <= used
    assert used <= set(BY_ADDRESS)


def test_max_controls_are_live_parameters() -> None:
    boxes = patchdoc.max_boxes(max_doc()["patcher"])
    params = {b["saved_attribute_attributes"]["valueof"]["parameter_longname"]: b for b in boxes if b["maxclass"].startswith("live.")}
    assert set(params) == {"Ear", "Layer", "Channel", "Dry/Wet", "Dream", "Image", "Link"}
    assert params["Image"]["maxclass"] == "live.drop"
    assert params["Link"]["maxclass"] == "live.toggle"
    assert "/ear/link $1" in _max_reached(max_doc()["patcher"], params["Link"]["id"])  # the toggle joins Link
    assert params["Ear"]["maxclass"] == "live.menu"
    assert params["Layer"]["maxclass"] == "live.menu"
    assert params["Channel"]["maxclass"] == "live.numbox"
    assert params["Dry/Wet"]["maxclass"] == params["Dream"]["maxclass"] == "live.dial"
    for box in params.values():
        assert box["parameter_enable"] == 1 and box.get("presentation") == 1
    assert set(params["Ear"]["saved_attribute_attributes"]["valueof"]["parameter_enum"]) <= set(registry.names())


def test_max_streams_leave_by_outlets_and_go_over_udp() -> None:
    boxes = patchdoc.max_boxes(max_doc()["patcher"])
    texts = [b.get("text", "") for b in boxes]
    assert any(t.startswith("udpsend ") for t in texts)
    assert any(t.startswith("udpreceive ") for t in texts)
    route = next(t.split() for t in texts if t.startswith("route /ear/pitch"))
    assert {f"/ear/{s}" for s in STREAMS} <= set(route[1:])
    outlets = sum(1 for t in texts if t == "outlet")
    assert outlets == len(STREAMS)
    assert any(t == "plugin~" for t in texts) and any(t == "plugout~" for t in texts)


def _max_reached(patcher: dict, start: str) -> set[str]:  # type: ignore[type-arg]
    """The texts of every box downstream of box ``start`` (following the cords)."""
    boxes = {b["id"]: b for b in patchdoc.max_boxes(patcher)}
    out: dict[str, list[str]] = {}
    for line in patcher["lines"]:
        out.setdefault(line["patchline"]["source"][0], []).append(line["patchline"]["destination"][0])
    seen, todo = set(), [start]
    while todo:
        for nxt in out.get(todo.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return {boxes[i].get("text", "") for i in seen}


def test_max_dials_drive_the_mix_and_the_sonifier() -> None:
    patcher = max_doc()["patcher"]
    dials = {b["saved_attribute_attributes"]["valueof"]["parameter_longname"]: b["id"]
             for b in patchdoc.max_boxes(patcher) if b["maxclass"] == "live.dial"}
    dream = _max_reached(patcher, dials["Dream"])
    assert {"/ear/sonify dream", "/ear/sonify off", "/ear/sonify/strength $1", "udpsend 127.0.0.1 9000"} <= dream
    assert not any(t.startswith("s ") for t in dream)  # no longer parked on a send
    assert {"/ear/output/mix $1 $2", "udpsend 127.0.0.1 9000"} <= _max_reached(patcher, dials["Dry/Wet"])


def max_match_problems(patcher: dict) -> list[str]:  # type: ignore[type-arg]
    """What is missing from the device's picture match: a drop zone whose path, made POSIX, goes
    through ``/ear/match $1`` to the server; an ``/ear/match/off`` message; the comment."""
    boxes = patchdoc.max_boxes(patcher)
    drops = [b["id"] for b in boxes if b["maxclass"] in ("live.drop", "dropfile")]
    if not drops:
        return ["no live.drop or dropfile"]
    problems = []
    reached = _max_reached(patcher, drops[0])
    for needed in ("conformpath slash boot", "/ear/match $1", "udpsend 127.0.0.1 9000"):
        if needed not in reached:
            problems.append(f"the drop zone does not reach [{needed}]")
    off = [b["id"] for b in boxes if b["maxclass"] == "message" and b.get("text") == "/ear/match/off"]
    if not off or "udpsend 127.0.0.1 9000" not in _max_reached(patcher, off[0]):
        problems.append("no /ear/match/off message into udpsend")
    if not any(b["maxclass"] == "comment" and "drop an image" in b.get("text", "") for b in boxes):
        problems.append("no comment saying what to drop")
    return problems


def test_max_drop_zone_sends_the_picture_to_match() -> None:
    patcher = max_doc()["patcher"]
    assert max_match_problems(patcher) == []
    drop = next(b for b in patchdoc.max_boxes(patcher) if b["maxclass"] == "live.drop")
    assert drop.get("presentation") == 1  # the user sees it on the device
    off = next(b for b in patchdoc.max_boxes(patcher) if b.get("text") == "/ear/match/off")
    assert off.get("presentation") == 1
    assert patchdoc.check_call("/ear/match", [patchdoc.Placeholder("any")]) is None


def test_max_match_check_catches_a_broken_chain() -> None:
    patcher = max_doc()["patcher"]
    ids = {b["id"]: b for b in patchdoc.max_boxes(patcher)}
    broken = dict(patcher, lines=[
        line for line in patcher["lines"]
        if ids[line["patchline"]["source"][0]].get("text") != "conformpath slash boot"
    ])
    assert "the drop zone does not reach [/ear/match $1]" in max_match_problems(broken)


def _mutate_max(patches: Path, change: Callable[[dict], None]) -> list[str]:  # type: ignore[type-arg]
    path = patches / "max" / "earsight" / "patchers" / "earsight.maxpat"
    doc = json.loads(path.read_text())
    change(doc["patcher"])
    path.write_text(json.dumps(doc))
    return patchdoc.check_max(path)


def test_max_check_catches_a_cord_to_a_missing_inlet(patches: Path) -> None:
    def change(p: dict) -> None:  # type: ignore[type-arg]
        p["lines"][0]["patchline"]["destination"][1] = 7

    assert any("inlet 7" in problem for problem in _mutate_max(patches, change))


def test_max_check_catches_a_cord_to_a_missing_box(patches: Path) -> None:
    def change(p: dict) -> None:  # type: ignore[type-arg]
        p["lines"][0]["patchline"]["source"][0] = "obj-999"

    assert any("missing box" in problem for problem in _mutate_max(patches, change))


def test_max_check_catches_duplicate_ids(patches: Path) -> None:
    def change(p: dict) -> None:  # type: ignore[type-arg]
        p["boxes"][1]["box"]["id"] = p["boxes"][0]["box"]["id"]

    assert any("used twice" in problem for problem in _mutate_max(patches, change))


def test_max_check_catches_wrong_argument_types(patches: Path) -> None:
    def change(p: dict) -> None:  # type: ignore[type-arg]
        for b in p["boxes"]:
            if b["box"].get("text") == "/ear/select $1 $2":
                b["box"]["text"] = "/ear/select $2 $1"  # channel (a number) where the layer (a string) goes

    assert any("/ear/select" in problem and "must be a string" in problem for problem in _mutate_max(patches, change))


def test_max_check_catches_an_unknown_command(patches: Path) -> None:
    def change(p: dict) -> None:  # type: ignore[type-arg]
        for b in p["boxes"]:
            if b["box"].get("text", "").startswith("/ear/notify 9001"):
                b["box"]["text"] += ", /ear/stream/all 30"

    assert any("/ear/stream/all is not a command" in problem for problem in _mutate_max(patches, change))


def test_max_check_catches_a_match_with_too_many_arguments(patches: Path) -> None:
    def change(p: dict) -> None:  # type: ignore[type-arg]
        for b in p["boxes"]:
            if b["box"].get("text") == "/ear/match $1":
                b["box"]["text"] = "/ear/match $1 bar $2"  # a picture, a beat, and what?

    assert any("/ear/match" in problem for problem in _mutate_max(patches, change))


# ---------------------------------------------------------------- Pd


def test_pd_files_parse_and_cords_are_whole() -> None:
    for path in sorted((ROOT / "puredata").rglob("*.pd")):
        boxes, cords = patchdoc.parse_pd(path.read_text())
        assert boxes, path
        keys = {(b.canvas, b.index) for b in boxes}
        for canvas, a, _o, b, _i in cords:
            assert (canvas, a) in keys and (canvas, b) in keys, (path.name, a, b)


def test_pd_abstraction_has_an_outlet_per_stream() -> None:
    path = ROOT / "puredata" / "earsight" / "earsight.pd"
    assert set(patchdoc.pd_stream_routes(path)) == set(STREAMS)
    boxes, _ = patchdoc.parse_pd(path.read_text())
    top = [b for b in boxes if b.canvas == 0]
    assert sum(b.atoms == ["outlet"] for b in top) == len(STREAMS) + 1
    for needed in (["netsend", "-u", "-b"], ["netreceive", "-u", "-b"], ["oscformat"], ["oscparse"]):
        assert any(b.atoms == needed for b in top), needed


def test_pd_help_messages_are_commands() -> None:
    path = ROOT / "puredata" / "earsight" / "earsight-help.pd"
    assert patchdoc.check_pd(path) == []
    boxes, cords = patchdoc.parse_pd(path.read_text())
    ear = next(b for b in boxes if b.atoms[:1] == ["earsight"])
    wired = [b for b in boxes if b.kind == "msg" and any(c[1] == b.index and c[3] == ear.index for c in cords)]
    assert len(wired) >= 10


def pd_wired_messages(path: Path) -> list[list[str]]:
    """The messages of the help patch's message boxes wired into ``[earsight]``."""
    boxes, cords = patchdoc.parse_pd(path.read_text())
    ear = next(b for b in boxes if b.atoms[:1] == ["earsight"])
    wired = [b for b in boxes if b.kind == "msg" and any(c[0] == b.canvas == ear.canvas and c[1] == b.index and c[3] == ear.index for c in cords)]
    return [words for b in wired for words in patchdoc.pd_messages(b.atoms)]


def test_pd_help_matches_a_picture() -> None:
    messages = pd_wired_messages(ROOT / "puredata" / "earsight" / "earsight-help.pd")
    matches = [m for m in messages if m[0] == "match"]
    assert ["match", "view"] in matches
    assert any(len(m) == 2 and m[1] != "view" and m[1].endswith((".png", ".jpg")) for m in matches)  # a file
    assert ["match/off"] in messages
    for words in matches + [["match/off"]]:
        assert patchdoc.check_call(f"/ear/{words[0]}", [patchdoc.atom(w) for w in words[1:]]) is None, words


def test_pd_check_catches_a_bad_match_message(patches: Path) -> None:
    path = patches / "puredata" / "earsight" / "earsight-help.pd"
    path.write_text(path.read_text().replace("match view;", "match view bar 3;", 1))
    assert any("match view bar 3" in p for p in patchdoc.check_pd(path))


def test_pd_check_catches_a_bad_message(patches: Path) -> None:
    path = patches / "puredata" / "earsight" / "earsight-help.pd"
    path.write_text(path.read_text().replace("stream pitch 30;", "stream 30 pitch;", 1))
    assert any("stream 30 pitch" in p for p in patchdoc.check_pd(path))


def test_pd_check_catches_a_missing_stream_outlet(patches: Path) -> None:
    path = patches / "puredata" / "earsight" / "earsight.pd"
    path.write_text(path.read_text().replace(" embed onset", " onset", 1))
    assert any("stream 'embed' has no outlet" in p for p in patchdoc.check(patches))


# ---------------------------------------------------------------- TouchDesigner and SuperCollider


def test_td_script_commands_are_valid() -> None:
    td = load_td_script()
    sent = td.commands(9123)
    assert sent[0] == ("/ear/notify", [9123, "flat"])
    for address, args in sent:
        assert patchdoc.check_call(address, args) is None, (address, args)
    assert set(td.STREAMS) <= set(STREAMS)
    assert td.FLAT_CHANNELS == patchdoc.flat_channels()


def test_td_script_sends_sonify_mix_and_view_when_asked() -> None:
    td = load_td_script()
    plain = td.commands(9123)
    assert not any(address.startswith(("/ear/sonify", "/ear/output", "/ear/view")) for address, _ in plain)  # the defaults leave them
    sent = td.commands(9123, sonify="dream", sonify_params={"strength": 2.0, "steps": 4, "param": "wave"}, mix=(0.3, 1), view="features")
    assert sent[: len(plain)] == plain
    extra = sent[len(plain):]
    assert extra == [
        ("/ear/sonify/strength", [2.0]), ("/ear/sonify/steps", [4]), ("/ear/sonify/param", ["wave"]),
        ("/ear/sonify", ["dream"]), ("/ear/output/mix", [0.3, 1.0]), ("/ear/view", ["features"]),
    ]
    for address, args in extra:
        assert patchdoc.check_call(address, args) is None, (address, args)
    readme = (ROOT / "touchdesigner" / "README.md").read_text()
    for setting in ("SONIFY", "SONIFY_PARAMS", "MIX", "VIEW"):
        assert f"`{setting}`" in readme


def test_td_readme_names_the_same_channels_as_the_script() -> None:
    td = load_td_script()
    readme = (ROOT / "touchdesigner" / "README.md").read_text()
    for stream, addresses in td.FLAT_CHANNELS.items():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{stream}` | "))
        assert re.findall(r"`(/ear/[^`]+)`", row) == addresses


def test_sc_class_declares_every_method_the_readme_uses() -> None:
    sc = (ROOT / "supercollider" / "Earsight.sc").read_text()
    readme = (ROOT / "supercollider" / "README.md").read_text() + (ROOT / "supercollider" / "earsight-example.scd").read_text()
    used = set(re.findall(r"~ear\.(\w+)", readme))
    declared = set(re.findall(r"^\t(\w+) \{", sc, re.M))
    declared |= set(re.findall(r"<>?(\w+)", next(line for line in sc.splitlines() if line.startswith("\tvar "))))
    assert used <= declared, used - declared


class FakeTop:
    """A TOP as the script uses it: ``save(path)`` writes the frame."""

    def __init__(self) -> None:
        self.saved: list[str] = []

    def save(self, path: str) -> str:
        Path(path).write_bytes(b"\xff\xd8 a frame")
        self.saved.append(path)
        return path


class FakeOut:
    """The OSC Out DAT: remembers what it sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[object]]] = []

    def sendOSC(self, address: str, args: list[object]) -> None:  # noqa: N802 - TouchDesigner's name
        self.sent.append((address, list(args)))


def test_td_match_image_saves_the_frame_where_the_server_reads_and_sends_match(tmp_path: Path) -> None:
    td = load_td_script()
    top, out = FakeTop(), FakeOut()
    message = td.match_image(top, str(tmp_path), out=out)
    assert message == ("/ear/match", [str(tmp_path / td.MATCH_FILE)])
    assert out.sent == [message]
    assert patchdoc.check_call(*message) is None
    # the server, allowed that folder, finds the file the TOP wrote
    assert Folders(allowed=[tmp_path]).input(message[1][0]) == (tmp_path / td.MATCH_FILE).resolve()
    # a server that mounts the folder elsewhere gets its own path
    assert td.match_image(top, str(tmp_path), "/srv/td-share/") == ("/ear/match", ["/srv/td-share/" + td.MATCH_FILE])
    assert top.saved == [str(tmp_path / td.MATCH_FILE)] * 2


def test_td_match_execute_dat_matches_every_few_seconds(tmp_path: Path) -> None:
    td = load_td_script()
    text = td.match_execute_text("/project1/moviefilein1", 5, str(tmp_path))
    top, out = FakeTop(), FakeOut()
    clock = type("AbsTime", (), {"seconds": 0.0})()
    storage: dict[str, object] = {}
    me = type("Me", (), {"fetch": staticmethod(lambda key, default=None: storage.get(key, default)),
                         "store": staticmethod(storage.__setitem__)})()
    ops = {"/project1/moviefilein1": top, "earsight_out": out}
    scope: dict[str, object] = {"absTime": clock, "me": me, "op": ops.__getitem__}
    exec(compile(text, "earsight_match", "exec"), scope)  # as the Execute DAT runs it
    for second in (0.0, 1.0, 4.9, 5.0, 7.0, 10.5):
        clock.seconds = second  # type: ignore[attr-defined]
        scope["onFrameStart"](int(second * 60))  # type: ignore[operator]
    assert out.sent == [("/ear/match", [str(tmp_path / td.MATCH_FILE)])] * 3  # at 0, 5 and 10.5 s
    assert len(top.saved) == 3 and (tmp_path / td.MATCH_FILE).is_file()
    for address, args in out.sent:
        assert patchdoc.check_call(address, args) is None
    readme = (ROOT / "touchdesigner" / "README.md").read_text()
    for setting in ("MATCH_TOP", "MATCH_FOLDER", "MATCH_SERVER_FOLDER", "MATCH_EVERY"):
        assert f"`{setting}`" in readme and hasattr(td, setting)
    assert "--allow-dir" in readme.split("patchdoc:begin")[0]  # the hand-written part says where


def test_sc_class_matches_a_picture() -> None:
    sc = (ROOT / "supercollider" / "Earsight.sc").read_text()
    methods = dict(re.findall(r"^\t(\w+) \{(.*?)^\t\}", sc, re.M | re.S))
    assert re.match(r" \|image, action\|", methods["match"])
    assert "'/ear/match'" in methods["match"] and "action.value" in methods["match"]
    assert "'/ear/match/off'" in methods["matchOff"]
    assert re.match(r" \|seconds", methods["matchFollow"]) and "'/ear/match/follow'" in methods["matchFollow"]
    readme = (ROOT / "supercollider" / "README.md").read_text()
    assert "~ear.match(" in readme.split("patchdoc:begin")[0]


def test_from_your_host_section_covers_every_host() -> None:
    text = (ROOT / "README.md").read_text()
    assert text.startswith("## From your host")
    for host in ("Max for Live", "SuperCollider", "Pure Data", "TouchDesigner"):
        assert f"### {host}" in text
        section = text.split(f"### {host}")[1].split("###")[0]
        assert "Match a picture" in section, host  # how to match a picture
