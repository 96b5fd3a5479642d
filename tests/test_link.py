"""Ableton Link: the clock's arithmetic, Link off (the default), and the server with a second real
Link peer in a network namespace of their own (no discovery traffic leaves the machine)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import OscClient

from earsight.bench.link import bench_link, namespaced
from earsight.errors import BadRequest
from earsight.link import wait_beats


@pytest.mark.parametrize(("beat", "phase", "quantise", "beats"), [
    (10.25, 2.25, "beat", 0.75), (10.25, 2.25, "bar", 1.75), (12.0, 0.0, "bar", 0.0), (12.0, 0.0, "beat", 0.0),
    (7.9, 3.9, "bar", 0.1), (7.9, 3.9, "now", 0.0),
])
def test_the_next_beat_or_bar_is_so_many_beats_away(beat: float, phase: float, quantise: str, beats: float) -> None:
    assert wait_beats(beat, phase, 4.0, quantise) == pytest.approx(beats)


def test_an_unknown_boundary_is_refused() -> None:
    with pytest.raises(BadRequest, match="quantise must be one of now, beat, bar"):
        wait_beats(1.0, 1.0, 4.0, "bar2")


def test_link_is_off_until_asked_and_quantised_commands_then_happen_at_once(client: OscClient) -> None:
    status = client.request("/ear/link/status", reply="/ear/link/status.reply")
    values = dict(zip(status[::2], status[1::2], strict=True))
    assert values["link"] == 0 and values["peers"] == 0
    client.request("/ear/sonify", "off", "bar")  # no Link: no bar to wait for
    for args, reason in ((("/ear/sonify", "off", "bars"), "quantise must be one of"),
                         (("/ear/sonify", "loud", "bar"), "sonify mode must be one of"),
                         (("/ear/link/quantum", 0.5), "quantum must be 1-64"),
                         (("/ear/link/tempo", 5000.0), "tempo must be 20-999")):
        client.drain()
        client.send(*args)
        fail = client.expect("/ear/fail")
        assert fail[0] == args[0] and reason in str(fail[1]), fail


def test_the_server_and_a_second_peer_agree_on_tempo_and_beat() -> None:
    figures = bench_link(2.0)
    assert figures["tempo difference after the peer's change (BPM)"] < 0.1
    assert figures["tempo difference after the server's change (BPM)"] < 0.1
    assert figures["beat messages per second"] > 20  # (100 asked; a busy machine sends fewer, never none)
    assert figures["beat phase difference, largest (ms)"] < 5.0, figures
    # /ear/done of a command quantised to the bar comes right after the bar (the bound: scheduling)
    for what in ("the sonify mode", "a scene recall"):
        assert figures[f"{what} quantised to the bar: from the bar, largest (ms)"] < 50.0, figures


SC_LINKCLOCK = """(
var ear = Earsight("127.0.0.1", "EARSIGHT_PORT".getenv.asInteger), clock;
var call = { |method| var cond = Condition.new, result; method.({ |ok, answer| result = [answer, ok]; cond.test = true; cond.signal }); cond.wait; result };
SystemClock.sched(60, { "EARSIGHT FAIL timeout".postln; 2.exit; nil });
fork {
	var answer;
	answer = call.({ |k| ear.link(true, k) });
	if(answer[1].not) { ("EARSIGHT FAIL link " ++ answer[0]).postln; 1.exit };
	clock = LinkClock(2);
	while { clock.numPeers < 1 } { 0.05.wait };
	clock.tempo = 132 / 60;  // sclang sets the band's tempo
	1.wait;
	answer = call.({ |k| ear.linkStatus({ |status, ok| k.(ok, status) }) });
	("EARSIGHT server tempo % peers %".format(answer[0][\\tempo], answer[0][\\peers])).postln;
	answer = call.({ |k| ear.tempo(100, k) });  // and the server sets it
	1.wait;
	("EARSIGHT clock tempo %".format(clock.tempo * 60)).postln;
	clock.stop;
	"EARSIGHT OK".postln;
	0.exit;
}
)
"""

SC_RUNNER = """
import os, subprocess, sys
from earsight.cli import running_server
with running_server("--backend", "manual", "--no-view", "--input", "silence") as served:
    try:  # (sclang waits on its stdin after an error in the script: none here)
        done = subprocess.run([sys.argv[1], "-l", sys.argv[2], sys.argv[3]], capture_output=True, text=True, timeout=90,
                              stdin=subprocess.DEVNULL,
                              env={**os.environ, "EARSIGHT_PORT": str(served.address[1]), "QT_QPA_PLATFORM": "offscreen",
                                   "QTWEBENGINE_DISABLE_SANDBOX": "1"})
        print(done.stdout[-6000:])
    except subprocess.TimeoutExpired as exc:
        print("sclang timed out:", (exc.stdout or b"")[-4000:])
"""


@pytest.mark.skipif(shutil.which("sclang") is None, reason="sclang (supercollider-language) is not installed")
def test_a_supercollider_linkclock_and_the_server_follow_each_others_tempo(tmp_path: Path) -> None:
    patches = Path(__file__).resolve().parents[1] / "patches" / "supercollider"
    conf = tmp_path / "sclang_conf.yaml"
    conf.write_text(f"includePaths:\n    - {patches}\nexcludePaths:\n    []\npostInlineWarnings: false\n")
    script = tmp_path / "linkclock.scd"
    script.write_text(SC_LINKCLOCK)
    argv = namespaced([sys.executable, "-c", SC_RUNNER, str(shutil.which("sclang")), str(conf), str(script)])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=tmp_path).stdout
    assert "EARSIGHT OK" in out, out[-4000:]
    server = re.search(r"EARSIGHT server tempo ([\d.]+) peers (\d+)", out)
    clock = re.search(r"EARSIGHT clock tempo ([\d.]+)", out)
    assert server and clock, out[-4000:]
    assert abs(float(server.group(1)) - 132.0) < 0.1 and int(server.group(2)) >= 1  # the server follows sclang
    assert abs(float(clock.group(1)) - 100.0) < 0.1  # and sclang's LinkClock follows the server
