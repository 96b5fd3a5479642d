"""OSC intake: paced /ear/sync round trips and a setter flood, against a bare python-osc echo loop.

Round trips: every request needs its own answer. The flood: a fader (``/ear/input/gain``) sent
at a paced rate while audio runs, then a ``/ear/sync`` marker; every message must be read
(``received``) and either applied (answered ``/ear/done``) or coalesced into a later one
(``coalesced``), never lost.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from ..cli import running_server
from .common import grew, status_of

Target = tuple[str, int]


def _client() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1.0)
    return sock


def _paced(sock: socket.socket, target: Target, packet: Callable[[int], bytes], rate: int, count: int) -> float:
    """Send ``count`` packets at ``rate`` per second in small paced batches; the rate achieved."""
    start = time.perf_counter()
    for i in range(count):
        sock.sendto(packet(i), target)
        if i % 50 == 49:
            delay = start + (i + 1) / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    return count / max(time.perf_counter() - start, 1e-9)


def _collect(sock: socket.socket, counts: dict[bytes, int]) -> threading.Thread:
    """Count replies by address until the socket is quiet for a second."""

    def receive() -> None:
        while True:
            try:
                data, _ = sock.recvfrom(65536)
            except (TimeoutError, OSError):
                return
            address = data[: data.find(b"\0")]
            counts[address] = counts.get(address, 0) + 1

    thread = threading.Thread(target=receive)
    thread.start()
    return thread


def round_trips(target: Target, rate: int, seconds: float) -> tuple[float, int]:
    """Fraction of ``rate * seconds`` paced /ear/sync requests answered, and how many were not."""
    from ..osc import message

    sock = _client()
    counts: dict[bytes, int] = {}
    reader = _collect(sock, counts)
    count = int(rate * seconds)
    packet = message("/ear/sync", 1)
    _paced(sock, target, lambda _: packet, rate, count)
    reader.join()
    sock.close()
    answered = counts.get(b"/ear/synced", 0)
    return answered / count, count - answered


def flood(target: Target, rate: int, seconds: float) -> dict[str, float]:
    """A fader flood at ``rate``/s: how many were read, applied and coalesced by the server."""
    from ..osc import message

    before = status_of(target)
    sock = _client()
    counts: dict[bytes, int] = {}
    reader = _collect(sock, counts)
    count = int(rate * seconds)
    achieved = _paced(sock, target, lambda i: message("/ear/input/gain", 1.0 + (i % 2) * 1e-3), rate, count)
    sock.sendto(message("/ear/sync", 7), target)
    reader.join()
    sock.close()
    after = status_of(target)
    done, coalesced = counts.get(b"/ear/done", 0), grew(before, after, "coalesced")
    return {
        "sent": float(count),
        "rate achieved (/s)": achieved,
        "read by the server": grew(before, after, "received") - 1 - 1,  # less the marker and the status request
        "applied (answered)": float(done),
        "coalesced": coalesced,
        "lost (sent - applied - coalesced)": count - done - coalesced,
        "dropped from the inbox": grew(before, after, "inbox_dropped"),
        "marker answered": float(counts.get(b"/ear/synced", 0)),
    }


def bare_echo() -> tuple[socket.socket, Callable[[], None]]:
    """The baseline: a loop that parses with python-osc and answers, nothing else."""
    from pythonosc.osc_packet import OscPacket

    from ..osc import message

    bare = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bare.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    bare.bind(("127.0.0.1", 0))
    bare.settimeout(0.2)
    stop = threading.Event()

    def echo() -> None:
        while not stop.is_set():
            try:
                data, sender = bare.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            for m in OscPacket(data).messages:
                bare.sendto(message("/ear/synced", *m.message.params), sender)

    thread = threading.Thread(target=echo)
    thread.start()

    def close() -> None:
        stop.set()
        thread.join()
        bare.close()

    return bare, close


def bench_osc(
    rates: tuple[int, ...] = (5000, 10000, 20000, 40000), flood_rates: tuple[int, ...] = (40000, 80000), seconds: float = 3.0
) -> dict[str, float]:
    """Round trips at paced rates beside the bare echo; a fader flood while audio runs."""
    results: dict[str, float] = {}
    bare, close = bare_echo()
    try:
        for rate in rates:
            fraction, unanswered = round_trips(bare.getsockname(), rate, seconds)
            results[f"bare python-osc echo: answered at {rate}/s (baseline)"] = fraction
            results[f"bare python-osc echo: unanswered at {rate}/s"] = float(unanswered)
    finally:
        close()
    with running_server("--no-view", "--backend", "manual", "--input", "demo") as served:
        for rate in rates:
            fraction, unanswered = round_trips(served.address, rate, seconds)
            results[f"earsight: answered at {rate}/s"] = fraction
            results[f"earsight: unanswered at {rate}/s"] = float(unanswered)
        for rate in flood_rates:
            for key, value in flood(served.address, rate, seconds).items():
                results[f"fader flood {rate}/s: {key}"] = value
    best = [r for r in rates if results[f"earsight: unanswered at {r}/s"] == 0]
    results["earsight: highest round-trip rate with no loss (/s)"] = float(max(best) if best else 0)
    return results
