"""Ableton Link: the clock's arithmetic, Link off (the default), and the server with a second real
Link peer in a network namespace of their own (no discovery traffic leaves the machine)."""

from __future__ import annotations

import pytest
from conftest import OscClient

from earsight.bench.link import bench_link
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
