"""The Link section: the server and a second Link peer agree on tempo and on the beat.

Link finds its peers by multicast on every network interface, so the measurement runs in a network
namespace of its own with only loopback up (:func:`namespaced`): no discovery traffic leaves the
machine. In there, the server runs as its own process (as users run it) and this process is the
other peer. Figures: how soon they find each other; the tempo each sees after the other changed
it; the beat stream's beat at its bundles' timetags against the peer's beat at the same moment;
how far quantised commands land from the bar they waited for.

``python -m earsight.bench.link`` prints the figures as JSON (what the tests read).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import EarsightError


def namespaced(argv: list[str]) -> list[str]:
    """``argv`` in a network namespace of its own with only loopback up: ``unshare -n`` as root,
    else ``unshare -rn`` (a user namespace, where the kernel allows one)."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        raise EarsightError("the Link bench needs unshare (util-linux) and ip (iproute2)")
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-r", "-n"]
    return [*unshare, "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


def bench_link(seconds: float = 5.0) -> dict[str, float]:
    """:func:`measure` run in a namespace of its own; its figures."""
    argv = namespaced([sys.executable, "-m", "earsight.bench.link", "--seconds", str(seconds)])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300 + 2 * seconds)
    if done.returncode != 0:
        raise EarsightError(f"the Link measurement failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


class _Client:
    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])

    def send(self, address: str, *args: object) -> None:
        from ..osc import message

        self.sock.sendto(message(address, *args), self.server)

    def packets(self, timeout: float) -> list[tuple[float | None, str, list[Any]]]:
        """The messages of the next datagram: (bundle timetag or None, address, arguments)."""
        from pythonosc.osc_bundle import OscBundle
        from pythonosc.osc_message import OscMessage

        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(65536)
        except TimeoutError:
            return []
        if data.startswith(b"#bundle"):
            b = OscBundle(data)
            return [(b.timestamp, m.address, list(m.params)) for m in b if isinstance(m, OscMessage)]
        m = OscMessage(data)
        return [(None, m.address, list(m.params))]

    def request(self, address: str, *args: object, reply: str = "/ear/done", timeout: float = 10.0) -> tuple[list[Any], float]:
        """Send and wait for the answer; (its arguments, the wall-clock time it arrived)."""
        self.send(address, *args)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for _, addr, params in self.packets(0.5):
                if addr == "/ear/fail" and params[:1] == [address]:
                    raise EarsightError(f"{address}: {params[1:]}")
                if addr == reply and (reply != "/ear/done" or params[:1] == [address]):
                    return params, time.time()
        raise EarsightError(f"no {reply} for {address}")

    def status(self) -> dict[str, Any]:
        params, _ = self.request("/ear/status", reply="/ear/status.reply")
        return dict(zip(params[::2], params[1::2], strict=True))


def _until(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``condition()`` holds (raises after ``timeout``)."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise EarsightError(f"not within {timeout:g} s")
        time.sleep(0.02)
    return time.monotonic() - start


def _peer(peer: Any) -> tuple[float, float, float, int]:
    state = peer.now()
    if state is None:
        raise EarsightError("the peer left the Link session")
    return state


def measure(seconds: float = 5.0) -> dict[str, float]:
    """Inside a namespace: the server and this process's Link session, measured against each other."""
    from ..cli import running_server
    from ..link import LinkClock
    from ..supervise import Supervisor

    peer = LinkClock(tempo=97.0)
    supervisor = Supervisor()
    peer.start(supervisor)
    out: dict[str, float] = {}
    try:
        peer.set_enabled(True)
        with tempfile.TemporaryDirectory() as out_dir, \
                running_server("--backend", "manual", "--no-view", "--input", "silence", "--out-dir", out_dir) as served:
            c = _Client(served.address)
            c.request("/ear/link", 1)
            out["peers found after (s)"] = _until(lambda: c.status()["peers"] >= 1 and _peer(peer)[3] >= 1, 20.0)

            peer.set_tempo(133.0)  # the peer changes the tempo: the server follows
            out["server follows the peer's tempo after (s)"] = _until(lambda: abs(c.status()["tempo"] - 133.0) < 0.1, 10.0)
            out["tempo difference after the peer's change (BPM)"] = abs(float(c.status()["tempo"]) - _peer(peer)[2])
            c.request("/ear/link/tempo", 101.5)  # and the other way round
            out["peer follows the server's tempo after (s)"] = _until(lambda: abs(_peer(peer)[2] - 101.5) < 0.1, 10.0)
            out["tempo difference after the server's change (BPM)"] = abs(float(c.status()["tempo"]) - _peer(peer)[2])

            # The beat stream: each bundle's phase at its timetag against the peer's at that moment
            # (Link aligns the phase in the bar; each peer counts its beats from its own start)
            c.request("/ear/notify", c.port, "list", 1)
            c.request("/ear/stream", "beat", 100.0)
            offsets, end = [], time.monotonic() + seconds
            while time.monotonic() < end:
                for when, address, params in c.packets(0.5):
                    _, phase, tempo, _ = _peer(peer)
                    if address != "/ear/beat" or when is None:
                        continue
                    q = peer.quantum
                    phase_then = phase - (time.time() - when) * tempo / 60.0
                    offsets.append(((params[1] - phase_then + q / 2) % q - q / 2) * 60_000.0 / tempo)
            c.request("/ear/stream", "beat", 0.0)
            if not offsets:
                raise EarsightError("no beat stream arrived")
            ms = np.abs(np.asarray(offsets))
            out["beat messages per second"] = len(offsets) / seconds
            out["beat phase difference, median (ms)"] = float(np.median(ms))
            out["beat phase difference, largest (ms)"] = float(ms.max())

            # Quantised commands: /ear/done arrives once the change is made, on the bar it waited for
            c.request("/ear/scene/save", "link-bench")
            for what, command in (("the sonify mode", ("/ear/sonify", "off", "bar")),
                                  ("a scene recall", ("/ear/scene/recall", "link-bench", 0.0, "bar"))):
                errors = []
                for _ in range(3):
                    _, arrived = c.request(*command, timeout=30)
                    _, phase, tempo, _ = _peer(peer)
                    phase = (phase - (time.time() - arrived) * tempo / 60.0) % peer.quantum
                    errors.append(min(phase, peer.quantum - phase) * 60_000.0 / tempo)
                out[f"{what} quantised to the bar: from the bar, median (ms)"] = float(np.median(errors))
                out[f"{what} quantised to the bar: from the bar, largest (ms)"] = float(max(errors))
            out["server xruns (manual backend: late blocks)"] = float(c.status()["xruns"])
    finally:
        peer.stop()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description="Link: the server and a peer, in this network namespace")
    p.add_argument("--seconds", type=float, default=5.0)
    args = p.parse_args()
    print(json.dumps(measure(args.seconds)))


if __name__ == "__main__":
    main()
