"""The OSC transport over a real UDP socket: encoding, a receiver that never waits, coalescing, the inbox's bound."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

from earsight import osc
from earsight.osc import Incoming, OscServer, message


def _until(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.005)
    return check()


@pytest.mark.parametrize(
    "args",
    [(), (1,), (-(2**31),), (2**31 - 1,), (0.25,), ("",), ("a",), ("abc",), ("abcd",), ("abcdefg",), (True, 1.5, "x", 7)],
)
def test_messages_are_encoded_as_python_osc_encodes_them(args: tuple[object, ...]) -> None:
    builder = OscMessageBuilder("/ear/done")
    for a in args:
        builder.add_arg(a if not isinstance(a, bool) else int(a), {str: "s", float: "f"}.get(type(a), "i"))
    assert message("/ear/done", *args) == builder.build().dgram


def test_integers_beyond_int32_go_as_int64_not_an_error() -> None:
    """A counter after weeks of running must still reach /ear/status."""
    parsed = OscMessage(message("/ear/status.reply", "received", 2**40, -(2**33)))
    assert parsed.params == ["received", 2**40, -(2**33)]


class _Slow:
    """A handler that holds the dispatcher on its first message until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.seen: list[Incoming] = []

    def __call__(self, item: Incoming) -> None:
        if not self.seen:
            self.release.wait(10.0)
        self.seen.append(item)


@pytest.fixture
def slow_server() -> Iterator[tuple[OscServer, _Slow, socket.socket]]:
    handler = _Slow()
    server = OscServer("127.0.0.1", 0, handler, coalesce=["/ear/input/gain"])
    server.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield server, handler, sock
    finally:
        handler.release.set()
        sock.close()
        server.stop()


def test_the_receiver_reads_on_while_a_handler_is_slow_and_a_fader_flood_keeps_its_latest_value(
    slow_server: tuple[OscServer, _Slow, socket.socket],
) -> None:
    server, handler, sock = slow_server
    sock.sendto(message("/ear/ping"), server.address)
    assert _until(lambda: len(handler.seen) == 0 and server.applied == 1)
    n = 3000
    for i in range(n):
        sock.sendto(message("/ear/input/gain", float(i)), server.address)
        if i % 1000 == 0:
            sock.sendto(message("/ear/sync", i), server.address)  # not a setter: every one is applied
    # the handler still holds the dispatcher, yet every datagram has been read
    assert _until(lambda: server.received == 1 + n + 3), server.received
    assert len(handler.seen) == 0
    handler.release.set()
    assert _until(lambda: server.applied == server.received and server.inbox_bytes == 0)
    assert _until(lambda: len(handler.seen) == 1 + 3 + n - server.coalesced)
    gains = [item.args[0] for item in handler.seen if item.address == "/ear/input/gain"]
    syncs = [item.args[0] for item in handler.seen if item.address == "/ear/sync"]
    assert syncs == [0, 1000, 2000]
    assert gains[-1] == float(n - 1), "the latest value is the one applied"
    assert gains == sorted(gains)
    assert server.coalesced + len(gains) == n, "each gain was applied or counted as coalesced"
    assert server.coalesced >= n - 10
    assert server.dropped == 0


def test_senders_are_coalesced_apart(slow_server: tuple[OscServer, _Slow, socket.socket]) -> None:
    server, handler, sock = slow_server
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    try:
        sock.sendto(message("/ear/ping"), server.address)
        assert _until(lambda: server.applied == 1)
        for i in range(10):
            sock.sendto(message("/ear/input/gain", float(i)), server.address)
            other.sendto(message("/ear/input/gain", float(100 + i)), server.address)
        assert _until(lambda: server.received == 21)
        handler.release.set()
        assert _until(lambda: len(handler.seen) == 3)
        assert sorted(item.args[0] for item in handler.seen[1:]) == [9.0, 109.0]
        assert server.coalesced == 18
    finally:
        other.close()


def test_a_full_inbox_drops_and_counts_and_the_server_goes_on(
    slow_server: tuple[OscServer, _Slow, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, handler, sock = slow_server
    monkeypatch.setattr(osc, "MAX_INBOX", 64 * (osc.INBOX_OVERHEAD + 32))
    sock.sendto(message("/ear/ping"), server.address)
    assert _until(lambda: server.applied == 1)
    for i in range(200):
        sock.sendto(message("/ear/sync", i), server.address)
    assert _until(lambda: server.received == 201)
    assert 100 <= server.dropped < 200
    assert server.inbox_bytes <= osc.MAX_INBOX
    handler.release.set()
    assert _until(lambda: len(handler.seen) == 1 + 200 - server.dropped)
    assert _until(lambda: server.inbox_bytes == 0)
    sock.sendto(message("/ear/sync", 999), server.address)
    assert _until(lambda: handler.seen[-1].args == (999,))
