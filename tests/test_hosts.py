"""The host patches against a real server: sclang and Pd run headless as the clients; the
TouchDesigner script's subscription and the Max device's messages go out as those hosts send them.

Each host process runs with a timeout and is killed in a ``finally``, even when the test fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from conftest import OscClient, free_port, load_patchdoc, project_version
from PIL import Image
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket
from skimage import data

from earsight.app import App
from earsight.features import STREAMS
from earsight.sonify.params import BY_NAME

patchdoc = load_patchdoc()
ROOT = patchdoc.PATCHES
SCLANG = shutil.which("sclang")
PD = shutil.which("pd")


def run(command: list[str], *, timeout: float, cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run a host program in its own process group; kill the group in any case. Returns (status, output)."""
    proc = subprocess.Popen(
        command, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{command[0]} did not finish within {timeout} s; its output:\n{out[-4000:]}")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def fresh(server: App) -> Iterator[OscClient]:
    """A client that puts the server back as the tests expect it: CREPE hearing a 440 Hz sine."""
    c = OscClient(server.osc.address)

    def reset() -> None:
        c.request("/ear/input", "test", "sine", 440.0)
        c.request("/ear/sonify", "off")  # a host that failed halfway may have left it dreaming
        time.sleep(0.2)

    reset()
    try:
        yield c
    finally:
        reset()
        c.close()


# ---------------------------------------------------------------- SuperCollider


@pytest.mark.skipif(SCLANG is None, reason="sclang (supercollider-language) is not installed")
def test_supercollider_class_loads_an_ear_streams_pitch_and_schedules_a_bundle(server: App, fresh: OscClient, tmp_path: Path) -> None:
    # The class goes on sclang's class path as a user would put it: a config naming the folder.
    conf = tmp_path / "sclang_conf.yaml"
    conf.write_text(f"includePaths:\n    - {ROOT / 'supercollider'}\nexcludePaths:\n    []\npostInlineWarnings: false\n")
    status, out = run(
        [SCLANG, "-l", str(conf), str(ROOT / "supercollider" / "earsight-selftest.scd")],
        timeout=90, cwd=tmp_path,
        env={
            "EARSIGHT_PORT": str(server.osc.address[1]), "EARSIGHT_TIMEOUT": "60",
            "QT_QPA_PLATFORM": "offscreen", "QTWEBENGINE_DISABLE_SANDBOX": "1",
        },
    )
    report = "\n".join(line for line in out.splitlines() if "EARSIGHT" in line or "ERROR" in line)
    assert status == 0, f"sclang exited {status}:\n{report or out[-4000:]}"
    assert "EARSIGHT OK" in out
    assert "EARSIGHT dream on" in out and "EARSIGHT dream off" in out  # the server's status said so each time
    assert "EARSIGHT embed fitted" in out and "EARSIGHT scene recalled" in out
    # make_server starts without a view: the picture commands answer /ear/fail with the reason
    assert "EARSIGHT view fail: no view: start the server with --view-port" in out
    before = float(re.search(r"EARSIGHT pitch ([\d.]+)", out).group(1))  # type: ignore[union-attr]
    after = float(re.search(r"EARSIGHT pitch after ([\d.]+)", out).group(1))  # type: ignore[union-attr]
    switched = float(re.search(r"EARSIGHT switched after ([\d.]+) s", out).group(1))  # type: ignore[union-attr]
    assert abs(before - 440) < 10 and abs(after - 220) < 6
    assert 0.45 <= switched < 4.0, "the timetagged bundle was not applied at its time"


SC_ENV = {"QT_QPA_PLATFORM": "offscreen", "QTWEBENGINE_DISABLE_SANDBOX": "1"}


SC_TRACK = """(
var ear = Earsight("127.0.0.1", "EARSIGHT_PORT".getenv.asInteger, 2), got = 0;
SystemClock.sched(40, { "EARSIGHT FAIL timeout".postln; 2.exit; nil });
fork {
	var answer = ear.await('/ear/select', ["conv6", 7]);
	if(answer[1].not or: { answer[0][0].asString != ear.at('/ear/select').asString }) { ("EARSIGHT FAIL select " ++ answer[0]).postln; 1.exit };
	ear.notify;
	ear.stream(\\act, 20, { got = got + 1 });
	2.wait;
	("EARSIGHT act frames % values %".format(got, ear.values[\\act])).postln;
	if(got < 5 or: { ear.values[\\act].size != 1 }) { "EARSIGHT FAIL act".postln; 1.exit };
	ear.free;
	"EARSIGHT OK".postln;
	0.exit;
}
)
"""


@pytest.mark.skipif(SCLANG is None, reason="sclang (supercollider-language) is not installed")
def test_supercollider_talks_to_a_track_of_its_own(tmp_path: Path) -> None:
    from earsight.app import AppConfig
    from earsight.audio import AudioConfig, Source

    app = App(AppConfig(port=free_port(), ear="crepe", source=Source("test", "sine", 440.0),
                        audio=AudioConfig(backend="manual", inputs=2), out_dir=tmp_path))
    app.start()
    try:
        conf = tmp_path / "sclang_conf.yaml"
        conf.write_text(f"includePaths:\n    - {ROOT / 'supercollider'}\nexcludePaths:\n    []\npostInlineWarnings: false\n")
        script = tmp_path / "track.scd"
        script.write_text(SC_TRACK)
        status, out = run([SCLANG, "-l", str(conf), str(script)], timeout=90, cwd=tmp_path,
                          env={"EARSIGHT_PORT": str(app.osc.address[1]), **SC_ENV})
        report = "\n".join(line for line in out.splitlines() if "EARSIGHT" in line or "ERROR" in line)
        assert status == 0 and "EARSIGHT OK" in out, f"sclang exited {status}:\n{report or out[-4000:]}"
        # Earsight(host, port, 2) chose track 2's neurons and got track 2's stream; track 1's are its own
        assert app.tracks[1]["state"].selection.channels == (7,) and app.state.selection.channels != (7,)
    finally:
        app.stop()


@pytest.mark.skipif(SCLANG is None, reason="sclang (supercollider-language) is not installed")
def test_supercollider_installs_the_folder_as_a_quark_and_its_help_browser_finds_the_class(tmp_path: Path) -> None:
    """``Quarks.install("…/patches/supercollider")`` as a user runs it; after the next start the class
    compiles and SCDoc renders its help page (no warnings, every method documented)."""
    home = tmp_path / "home"  # sclang writes its help cache and quarks folder under HOME
    home.mkdir()
    conf = tmp_path / "sclang_conf.yaml"  # absolute: Quarks.install stores the include path in it
    conf.write_text("includePaths:\n    []\nexcludePaths:\n    []\npostInlineWarnings: false\n")
    folder = ROOT / "supercollider"
    install = tmp_path / "install.scd"
    install.write_text(
        f'Quarks.install("{folder}");\n'
        f'"EARSIGHT installed % %".format(Quarks.isInstalled("supercollider"), Quark("{folder}").data[\\schelp]).postln;\n'
        "0.exit;\n"
    )
    check = tmp_path / "check.scd"
    check.write_text(
        "var doc = SCDoc.documents[\"Classes/Earsight\"];\n"
        '"EARSIGHT class %".format(\\Earsight.asClass.notNil).postln;\n'
        'if(doc.notNil) { "EARSIGHT help % %".format(doc.isUndocumentedClass, doc.fullPath).postln; SCDoc.parseAndRender(doc);'
        ' "EARSIGHT html %".format(doc.destPath).postln };\n'
        "0.exit;\n"
    )
    env = {**SC_ENV, "HOME": str(home)}
    status, out = run([SCLANG, "-l", str(conf), str(install)], timeout=90, cwd=tmp_path, env=env)
    assert status == 0 and "EARSIGHT installed true Earsight" in out, out[-4000:]
    assert str(folder) in conf.read_text()  # the include path the next start compiles
    status, out = run([SCLANG, "-l", str(conf), str(check)], timeout=90, cwd=tmp_path, env=env)
    assert status == 0 and "EARSIGHT class true" in out, out[-4000:]
    assert f"EARSIGHT help false {folder / 'HelpSource' / 'Classes' / 'Earsight.schelp'}" in out, out[-4000:]
    assert "WARNING: SCDoc" not in out and "ERROR" not in out, out[-4000:]
    html = Path(re.search(r"EARSIGHT html (\S+)", out).group(1)).read_text()  # type: ignore[union-attr]
    assert "Undocumented" not in html  # every method and accessor has its entry
    for name in ("sonifyParam", "matchFollow", "*new", "timeout"):
        assert f"id='{'' if name.startswith('*') else '-'}{name}'" in html or f"href='#{'' if name.startswith('*') else '-'}{name}'" in html, name
    assert "/ear/match/follow" in html  # the OSC reference, from the command table
    uninstall = tmp_path / "uninstall.scd"
    uninstall.write_text('Quarks.uninstall("supercollider");\n0.exit;\n')
    status, out = run([SCLANG, "-l", str(conf), str(uninstall)], timeout=90, cwd=tmp_path, env=env)
    assert status == 0 and str(folder) not in conf.read_text(), out[-4000:]  # as the README says


# ---------------------------------------------------------------- Pure Data


@pytest.mark.skipif(PD is None, reason="pd (puredata-core) is not installed")
def test_puredata_abstraction_subscribes_and_receives_pitch(server: App, fresh: OscClient, tmp_path: Path) -> None:
    listen = free_port()
    status, out = run(
        [PD, "-nogui", "-noaudio", "-stderr", "-open", str(ROOT / "puredata" / "earsight-selftest.pd"),
         "-send", f"earsight-selftest {server.osc.address[1]} {listen}"],
        timeout=30, cwd=tmp_path,
    )
    assert status == 0, out[-4000:]
    assert "earsight-selftest: ok" in out, f"Pd gave up:\n{out[-4000:]}"
    assert "earsight-reply: pong" in out  # the answers came to the port named in /ear/notify
    assert "earsight-reply: done /ear/stream" in out
    assert out.count("earsight-reply: done /ear/sonify") == 2  # dream, then off: the abstraction passes any command
    # make_server starts without a view (Pd escapes the spaces of the reason when it prints it)
    assert re.search(r"earsight-reply: fail /ear/view/url no\\? view", out), out[-4000:]
    frames = [tuple(map(float, m)) for m in re.findall(r"earsight-pitch: ([-\d.e]+) ([-\d.e]+)", out)]
    assert len(frames) > 20
    confident = [hz for hz, confidence in frames if confidence > 0.5]
    assert len(confident) >= 15
    assert abs(statistics.median(confident) - 440) < 10
    assert "error" not in out.lower(), out


@pytest.mark.skipif(PD is None, reason="pd (puredata-core) is not installed")
@pytest.mark.parametrize("patch", ["earsight/earsight.pd", "earsight/earsight-help.pd", "earsight/earsight-meta.pd"])
def test_puredata_patches_open_without_errors(patch: str, tmp_path: Path) -> None:
    status, out = run([PD, "-nogui", "-noaudio", "-stderr", "-open", str(ROOT / "puredata" / patch), "-send", "pd quit"], timeout=20, cwd=tmp_path)
    assert status == 0
    assert "couldn't create" not in out and "error" not in out.lower(), out


@pytest.mark.skipif(PD is None, reason="pd (puredata-core) is not installed")
def test_puredata_finds_the_library_on_its_path_and_opens_the_help_of_an_earsight_object(tmp_path: Path) -> None:
    """The library folder as deken installs it: a user's patch elsewhere creates [earsight] from the
    search path, and Help on that object (the popup menu's third entry) opens earsight-help.pd from
    the library folder, whose own [earsight] loads too."""
    library = ROOT / "puredata" / "earsight"
    (tmp_path / "mine.pd").write_text("#N canvas 0 50 450 300 12;\n#X obj 20 20 earsight 9000 9001;\n")
    status, out = run(
        [PD, "-nogui", "-noaudio", "-stderr", "-verbose", "-path", str(library), "-open", str(tmp_path / "mine.pd"),
         "-send", "pd-mine.pd done-popup 2 25 25; pd quit"],
        timeout=20, cwd=tmp_path,
    )
    assert status == 0, out[-4000:]
    found = [line for line in out.splitlines() if line.endswith("and succeeded")]
    assert f"verbose(4): tried {library / 'earsight.pd'} and succeeded" in found, out[-4000:]
    assert f"verbose(4): tried {library / 'earsight-help.pd'} and succeeded" in found, out[-4000:]
    assert found.count(f"verbose(4): tried {library / 'earsight.pd'} and succeeded") >= 2  # the help's own [earsight]
    assert "couldn't create" not in out and "error" not in out.lower(), out[-4000:]
    meta = (library / "earsight-meta.pd").read_text()
    assert f"VERSION {project_version()};" in meta and "NAME earsight;" in meta


# ---------------------------------------------------------------- TouchDesigner


def load_td_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("earsight_td", ROOT / "touchdesigner" / "earsight_td.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def collect(sock: socket.socket, seconds: float) -> list[tuple[str, list[object]]]:
    messages: list[tuple[str, list[object]]] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data, _ = sock.recvfrom(65536)
        except TimeoutError:
            break
        messages += [(m.message.address, list(m.message.params)) for m in OscPacket(data).messages]
    return messages


def test_touchdesigner_channels_match_the_flat_stream_of_a_running_server(server: App, fresh: OscClient) -> None:
    td = load_td_script()
    chop = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the OSC In CHOP
    dat = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the OSC Out DAT
    try:
        chop.bind(("127.0.0.1", 0))
        dat.bind(("127.0.0.1", 0))
        listen = chop.getsockname()[1]
        for address, args in td.commands(listen):  # as the script sends them: sendOSC(address, args)
            builder = OscMessageBuilder(address)
            for arg in args:
                builder.add_arg(arg, "i" if isinstance(arg, int) else "f" if isinstance(arg, float) else "s")
            dat.sendto(builder.build().dgram, server.osc.address)
        messages = collect(chop, 1.5)
        fails = [args for address, args in messages if address == "/ear/fail"]
        assert not fails, fails
        arrived: dict[str, set[str]] = {}
        for address, args in messages:
            if address in patchdoc.reply_addresses():
                continue
            # what the OSC In CHOP needs: one float or int per address, so each address is one channel
            assert len(args) == 1 and isinstance(args[0], (int, float)), (address, args)
            stream = address.split("/")[2]
            arrived.setdefault(stream, set()).add(address)
        assert set(arrived) == set(td.STREAMS)
        readme = (ROOT / "touchdesigner" / "README.md").read_text()
        for stream in td.STREAMS:
            assert arrived[stream] == set(td.FLAT_CHANNELS[stream]), stream
            row = next(line for line in readme.splitlines() if line.startswith(f"| `{stream}` | `/ear/"))
            assert set(re.findall(r"`(/ear/[^`]+)`", row)) == arrived[stream]
            assert all(patchdoc.known_address(a) for a in arrived[stream])
        pitch = [args[0] for address, args in messages if address == "/ear/pitch/hz"]
        assert abs(statistics.median(pitch) - 440) < 10  # type: ignore[type-var]
    finally:
        if ("127.0.0.1", chop.getsockname()[1]) in server.streams.subscribers:
            server.streams.unsubscribe(("127.0.0.1", chop.getsockname()[1]))
        chop.close()
        dat.close()
        fresh.request("/ear/select", "conv1")


def test_touchdesigner_sonify_mix_and_view_reach_the_server(server: App, fresh: OscClient) -> None:
    """The settings' commands, sent as TouchDesigner sends them: done for the sonification and the mix;
    the view answers /ear/fail, for make_server starts without one."""
    td = load_td_script()
    plain = td.commands(fresh.port)
    sent = td.commands(fresh.port, sonify="dream", sonify_params={"strength": 2.0, "steps": 4}, mix=(0.3, 1.0), view="layout")[len(plain):]
    fresh.request("/ear/select", *td.SELECT)
    try:
        for address, args in sent:
            types = "".join("i" if isinstance(a, int) else "f" if isinstance(a, float) else "s" for a in args)
            if address == "/ear/view":
                fresh.drain()
                fresh.send(address, *args, types=types)
                reason = fresh.expect("/ear/fail")
                assert reason[0] == "/ear/view" and "no view" in str(reason[1]), reason
            else:
                fresh.request(address, *args, types=types)
        assert server.sonifier.mode == "dream"
        assert server.sonifier.values["strength"] == 2.0 and server.sonifier.values["steps"] == 4
    finally:
        fresh.request("/ear/sonify", "off")
        for name in ("strength", "steps"):
            fresh.request(f"/ear/sonify/{name}", BY_NAME[name].default)
        fresh.request("/ear/output/mix", 1.0, 0.0)
        fresh.request("/ear/select", "conv1")


def test_touchdesigner_flat_names_for_every_stream_the_ear_gives(server: App, fresh: OscClient) -> None:
    """Beyond the script's STREAMS: whatever a stream sends in flat is what FLAT_CHANNELS names."""
    td = load_td_script()
    fresh.request("/ear/notify", fresh.port, "flat")
    fresh.request("/ear/select", *td.SELECT)
    fresh.request("/ear/embed/fit", td.SELECT[0], 0.5, 4)  # the embed stream needs a fitted embedding
    try:
        for stream in STREAMS:
            if not td.FLAT_CHANNELS[stream]:
                continue  # the default ear cannot give it (tags, top need labels)
            fresh.request("/ear/stream", stream, 50.0)
        messages = collect(fresh.sock, 1.0)
        for address, _ in messages:
            if address in patchdoc.reply_addresses():
                continue
            assert address in td.FLAT_CHANNELS[address.split("/")[2]], address
    finally:
        fresh.request("/ear/notify/off")
        fresh.request("/ear/select", "conv1")


# ---------------------------------------------------------------- Max


Feeders = dict[tuple[str, int], list[tuple[dict, int]]]  # type: ignore[type-arg]


def _sample(feeders: Feeders, box_id: str, index: int) -> object:
    """A value Max could send as element ``index`` of the message that reaches ``box_id``'s left inlet:
    the first item of a live.menu, a mid-range float, or 0."""
    source, outlet = feeders[(box_id, 0)][0]
    words = source.get("text", "").split()
    if source.get("maxclass") == "newobj" and words[:1] in (["pack"], ["pak"]):
        source, outlet = feeders[(source["id"], index)][0]  # what fills that element of the pack
        if words[index + 1].endswith("."):
            return 0.5
    if source.get("maxclass") == "live.menu":
        return source["saved_attribute_attributes"]["valueof"]["parameter_enum"][0]
    if source.get("text", "").startswith("conformpath"):  # a file dropped on the device: a picture
        path = Path(tempfile.gettempdir()) / "earsight-test-dropped.png"
        Image.fromarray(data.coffee()).save(path)
        return str(path)
    return 0


def test_max_device_messages_are_accepted_by_the_server(server: App, fresh: OscClient) -> None:
    """Every message box of the device, sent as Max sends it (int32, float32, strings): no /ear/fail."""
    patcher = json.loads((ROOT / "max" / "earsight" / "patchers" / "earsight.maxpat").read_text())["patcher"]
    boxes = {b["id"]: b for b in patchdoc.max_boxes(patcher)}
    feeders: Feeders = {}
    for line in patcher["lines"]:
        (src, outlet), (dst, inlet) = line["patchline"]["source"], line["patchline"]["destination"]
        feeders.setdefault((dst, inlet), []).append((boxes[src], outlet))
    sent = 0
    listen = None
    try:
        for box in boxes.values():
            if box["maxclass"] != "message" or not box["text"].startswith("/ear/"):
                continue
            for message in box["text"].split(","):
                words = message.split()
                args: list[object] = []
                for word in words[1:]:
                    if word.startswith("$"):
                        args.append(_sample(feeders, box["id"], int(word[1]) - 1))
                    else:
                        args.append(patchdoc.atom(word))
                if words[0] == "/ear/notify":
                    listen = ("127.0.0.1", int(args[0]))  # type: ignore[call-overload]
                    args[0] = fresh.port  # the device listens on 9001; here the test client does
                # a match may synthesise the sound library first (seconds, on a fresh machine)
                fresh.request(words[0], *args, reply=patchdoc.BY_ADDRESS[words[0]].reply,
                              timeout=180.0 if words[0] == "/ear/match" else 15.0)
                sent += 1
        assert sent >= 8
    finally:
        for address in (listen, ("127.0.0.1", fresh.port)):
            if address in server.streams.subscribers:
                server.streams.unsubscribe(address)  # type: ignore[arg-type]
        fresh.request("/ear/sonify", "off")  # the Dream dial's messages turn dreaming on
        fresh.request("/ear/output/mix", 1.0, 0.0)
        fresh.request("/ear/select", "conv1")
