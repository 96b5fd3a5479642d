"""Handlers through the real command table and dispatcher, around a real ear state: no pyo, no JACK, no sockets.

Replies are collected as (to, address, args) instead of being sent; every test checks what a
client would receive and what changed in the state.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from earsight.commands import COMMANDS, SERVICES, Dispatcher
from earsight.ears.base import Ear
from earsight.embed import EmbedFitter
from earsight.osc import Incoming
from earsight.state import EarState
from earsight.streams import Streams

SENDER = ("127.0.0.1", 57120)


class Table:
    """The real table and dispatcher, the state and the services that run without audio."""

    def __init__(self, ear: Ear) -> None:
        self.state = EarState("crepe", ear)
        self.packets: list[tuple[bytes, tuple[str, int]]] = []
        self.streams = Streams(lambda packet, to: self.packets.append((packet, to)), self.state)
        self.fitter = EmbedFitter(self.state)
        self.replies: list[tuple[tuple[str, int], str, list[object]]] = []
        self.dispatcher = Dispatcher(
            COMMANDS, {"state": self.state, "streams": self.streams, "embed": self.fitter, "view": None},
            lambda to, address, args: self.replies.append((to, address, list(args))),
            route=self.streams.route, unavailable={"view": "no view: start the server with --view-port"},
        )

    def send(self, address: str, *args: object, sender: tuple[str, int] = SENDER) -> list[tuple[str, list[object]]]:
        self.replies.clear()
        self.dispatcher.handle(Incoming(address, args, sender, 0.0))
        return [(address, values) for _, address, values in self.replies]


@pytest.fixture
def table(crepe: Ear) -> Table:
    return Table(crepe)


def test_select_changes_the_state_and_tells_its_listeners(table: Table) -> None:
    seen: list[str] = []
    table.state.listen(seen.append)
    assert table.send("/ear/select", "conv4", 1, 3.0) == [("/ear/done", ["/ear/select"])]
    assert (table.state.selection.layer, table.state.selection.channels) == ("conv4", (1, 3))
    assert seen == ["selection"] and table.state.generation == 1


@pytest.mark.parametrize(
    ("args", "reason"),
    [(("conv9",), "has no layer 'conv9'"), (("conv4", 9999), "no channel 9999"), (("conv4", 1.5), "whole number")],
)
def test_a_bad_selection_fails_and_changes_nothing(table: Table, args: tuple[object, ...], reason: str) -> None:
    before = table.state.selection
    [(address, values)] = table.send("/ear/select", *args)
    assert address == "/ear/fail" and values[0] == "/ear/select" and reason in str(values[1])
    assert table.state.selection == before and table.state.generation == 0


def test_a_pattern_reaches_every_matching_command(table: Table) -> None:
    replies = table.send("/ear/{top,notify}", 3, 0.2)  # /ear/notify gets (3, 0.2): a bad format
    assert ("/ear/done", ["/ear/top"]) in replies
    assert any(a == "/ear/fail" and v[0] == "/ear/notify" for a, v in replies)
    assert table.state.top == (3, 0.2)


def test_notify_and_stream_route_replies_and_values_to_the_subscriber(table: Table) -> None:
    assert table.send("/ear/notify", 9001) == [("/ear/done", ["/ear/notify"])]
    table.send("/ear/stream", "pitch", 500)
    to, address, _ = table.replies[0]
    assert to == ("127.0.0.1", 9001) and address == "/ear/done"  # replies follow the subscription
    sub = table.streams.subscribers[("127.0.0.1", 9001)]
    assert sub.rates == {"pitch": table.state.ear.frame_rate}  # capped at the ear's frame rate


def test_a_stream_the_ear_cannot_give_fails(table: Table) -> None:
    [(address, values)] = table.send("/ear/stream", "tags", 10)
    assert address == "/ear/fail" and "has no labels" in str(values[1])


def test_a_missing_service_fails_with_what_to_do(table: Table) -> None:
    [(address, values)] = table.send("/ear/view/url")
    assert (address, values) == ("/ear/fail", ["/ear/view/url", "no view: start the server with --view-port"])


def test_an_unknown_address_fails(table: Table) -> None:
    [(address, values)] = table.send("/ear/nope")
    assert address == "/ear/fail" and values[0] == "/ear/nope" and "unknown command" in str(values[1])


def test_embed_fit_answers_once_fitted_on_the_coming_frames(table: Table) -> None:
    ear = table.state.ear
    assert table.send("/ear/embed/fit", "conv6", 0.5, 3) == []  # deferred: answered when fitted
    rng = np.random.default_rng(0)
    for _ in range(int(0.5 * ear.frame_rate)):
        frame = {layer.name: rng.standard_normal(layer.shape).astype(np.float32) for layer in ear.layers}
        table.fitter.on_frame(ear, frame, np.zeros(ear.hop, np.float32), 0.0)
    assert [(a, v) for _, a, v in table.replies] == [("/ear/done", ["/ear/embed/fit", "conv6", 3])]
    assert table.state.embedding is not None and table.state.embedding.layer == "conv6"


def test_every_command_names_a_service_the_server_provides() -> None:
    assert set(SERVICES) == {"server", "streams", "state", "embed", "ear", "audio", "view", "sonify", "match", "scenes", "link"}


def test_the_command_table_loads_without_torch() -> None:
    code = "import sys, earsight.commands; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("address", ["/ear/{ping", "/ear/[pi", "/ear/{a,{b}}"])
def test_a_malformed_pattern_fails_with_a_reason(table: Table, address: str) -> None:
    [(reply, values)] = table.send(address)
    assert reply == "/ear/fail" and values[0] == address and "bad address pattern" in str(values[1])


def test_subscribers_are_capped_so_forged_senders_cannot_grow_memory(table: Table) -> None:
    from earsight.streams import MAX_SUBSCRIBERS

    for port in range(MAX_SUBSCRIBERS):
        assert table.send("/ear/stream", "level", 10, 20000 + port)[0][0] == "/ear/done"
    [(address, values)] = table.send("/ear/stream", "level", 10, 30000)
    assert address == "/ear/fail" and "subscribers already" in str(values[1])
    assert len(table.streams.subscribers) == MAX_SUBSCRIBERS


def test_oscdoc_answers_without_loading_torch() -> None:
    code = (
        "import sys, io, contextlib\n"
        "from earsight.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    assert main(['oscdoc']) == 0\n"
        "assert '/ear/ping' in out.getvalue()\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
