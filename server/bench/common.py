"""What the sections share: a server's status asked from a socket of its own, a JACK server when none runs,
and the machine's own xrun baselines."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from ..errors import EarsightError


def ask(server: tuple[str, int], address: str, reply: str, tries: int = 10) -> list[object]:
    """Send ``address`` from a socket of its own (the bench's others are busy) until ``reply`` comes."""
    from pythonosc.osc_packet import OscPacket

    from ..osc import message

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(1.0)
        for _ in range(tries):
            sock.sendto(message(address), server)
            try:
                data, _ = sock.recvfrom(65536)
            except TimeoutError:
                continue
            for m in OscPacket(data).messages:
                if m.message.address == reply:
                    return list(m.message.params)
    raise EarsightError(f"no {reply}")


def key_values(server: tuple[str, int], address: str = "/ear/status") -> dict[str, object]:
    """A key-value reply (``/ear/status``, ``/ear/sonify/status``) as a dict."""
    p = ask(server, address, f"{address}.reply")
    return dict(zip([str(k) for k in p[::2]], p[1::2], strict=True))


def status_of(server: tuple[str, int]) -> dict[str, object]:
    """/ear/status as a dict."""
    return key_values(server)


def number(status: dict[str, object], key: str) -> float:
    """A numeric field of a status (0 where a server does not report it)."""
    value = status.get(key, 0)
    return float(value) if isinstance(value, (int, float)) else float("nan")


def grew(before: dict[str, object], after: dict[str, object], key: str) -> float:
    """How much a counter grew between two statuses."""
    return number(after, key) - number(before, key)


def ensure_jack(sample_rate: int, block: int) -> Any:
    from ..audio import jack as jackmod

    if jackmod.running():
        return None
    return jackmod.start_dummy(sample_rate, block)


@contextlib.contextmanager
def jack_server(sample_rate: int = 48000, block: int = 256) -> Iterator[None]:
    """A JACK server for the block: the one running, or a dummy of ours, stopped afterwards."""
    jackd = ensure_jack(sample_rate, block)
    try:
        yield
    finally:
        if jackd is not None:
            jackd.terminate()
            jackd.wait(5)


BUSY_LOOP = "while True: pass"
"""Pure user-space work: no system call, no memory. Inside the machine a real-time thread preempts
it at once, so xruns it causes are the hypervisor's (a busy virtual CPU loses its host CPU)."""


def xrun_baselines(monitor: Any, seconds: float) -> tuple[int, int]:
    """JACK xruns in ``seconds`` with the machine idle, then with every CPU running a nice-19 busy loop.

    The second is the floor for any load on this machine: the server cannot do better than a
    process that only spins.
    """
    start = monitor.count
    time.sleep(seconds)
    idle = monitor.count - start
    loops = [
        subprocess.Popen([sys.executable, "-c", BUSY_LOOP], preexec_fn=lambda: os.nice(19))
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        start = monitor.count
        time.sleep(seconds)
        busy = monitor.count - start
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    return idle, busy


def per_minute(count: float, seconds: float) -> float:
    return 60.0 * count / max(seconds, 1e-9)


def xrun_rows(baselines: tuple[int, int], span: float, loaded: int, seconds: float, load: str) -> dict[str, float]:
    """The xrun figures: both baselines (of ``span`` s each) beside ``loaded`` xruns in ``seconds`` of ``load``."""
    idle, busy = baselines
    return {
        f"JACK xruns idle in {span:.0f} s (baseline)": float(idle),
        f"JACK xruns in {span:.0f} s of busy loops, no server (baseline: the machine)": float(busy),
        f"JACK xruns in {seconds:.0f} s, {load}": float(loaded),
        "JACK xruns per minute, idle": per_minute(idle, span),
        "JACK xruns per minute, busy loops": per_minute(busy, span),
        f"JACK xruns per minute, {load}": per_minute(loaded, seconds),
    }


def show(title: str, rows: dict[str, Any]) -> None:
    print(f"\n== {title}")
    for key, value in rows.items():
        print(f"  {key:38s} {value:.4g}" if isinstance(value, float) else f"  {key:38s} {value}")
