"""Audio in -> OSC out through JACK, per stream, beside the floors measured in the same run.

A JACK client plays events into a JACK input port: clicks (32 samples at 0.9) for ``level`` and
``onset``, tone bursts (440 Hz, 0.2 s) for ``pitch``, each at the start of a block, a random
number of blocks apart. A UDP client times each event from the JACK cycle that carried it to the
first message showing it: level's peak above 0.5, an onset message, pitch confidence above 0.5.
The pitch figure is set beside the server's declared ``pitch_latency_ms`` (the same event, the
same threshold, on average). The floors are bare pyo processes on the same JACK server
sending the block peak (:mod:`earsight.bench.floors`).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..cli import running_server
from .common import ensure_jack, grew, number, status_of

SR, BLOCK = 48000, 256
Detect = Callable[[str, list[Any]], bool | None]
"""(address, values) -> whether the event shows (None: this message says nothing)."""


class Player:
    """A JACK client that plays an event every ``interval`` seconds into a port it is connected to."""

    def __init__(self) -> None:
        import jack

        self.client = jack.Client("earsight-bench-events", no_start_server=True)
        self.port = self.client.outports.register("out")
        self.kind = "click"
        self.sent: list[float] = []
        self.next = 0
        self.left = 0
        self.phase = 0
        self.count = 0
        self.interval = 0.25
        # Events land a random number of blocks late, so they fall at every phase of the ear's
        # hop (a fixed interval is a whole number of hops and would measure one phase only).
        self.rng = np.random.default_rng(0)
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        buf = self.port.get_array()
        buf[:] = 0.0
        now = self.client.last_frame_time
        if self.next and now >= self.next and len(self.sent) < self.count:
            self.sent.append(time.time())
            self.next += int(self.interval * SR) + BLOCK * int(self.rng.integers(0, 16))
            self.left = int(0.2 * SR) if self.kind == "burst" else 0
            self.phase = 0
            if self.kind == "click":
                buf[:32] = 0.9
        if self.left > 0:
            n = min(frames, self.left)
            k = self.phase + np.arange(n)
            buf[:n] = 0.5 * np.sin(2 * np.pi * 440.0 * k / SR)
            self.phase += n
            self.left -= n

    def run(self, target: str, sock: socket.socket, detects: dict[str, Detect], kind: str = "click",
            count: int = 40, interval: float = 0.25) -> dict[str, np.ndarray]:
        """Play ``count`` events into ``target``; per detector, the latency (ms) of each detected event."""
        self.kind, self.count, self.interval, self.sent = kind, count, interval, []
        self.client.connect(self.port, target)
        from pythonosc.osc_packet import OscPacket

        arrived: dict[str, list[float]] = {name: [] for name in detects}
        shown = dict.fromkeys(detects, False)
        try:
            time.sleep(0.3)
            self.next = self.client.last_frame_time + SR // 4
            deadline = time.monotonic() + count * (interval + 16 * BLOCK / SR) + 2.0
            sock.settimeout(0.2)
            while time.monotonic() < deadline:
                try:
                    data, _ = sock.recvfrom(65536)
                except TimeoutError:
                    continue
                now = time.time()
                for m in OscPacket(data).messages:
                    for name, detect in detects.items():
                        on = detect(m.message.address, list(m.message.params))
                        if on is None:
                            continue
                        if on and not shown[name]:
                            arrived[name].append(now)
                        shown[name] = bool(on)
        finally:
            self.next = 0
            self.client.disconnect(self.port, target)
        sent = np.array(self.sent)
        out = {}
        for name, times in arrived.items():  # each detection belongs to the newest event sent before it
            lat = [1000.0 * (t - sent[sent <= t][-1]) for t in times if (sent <= t).any()]
            out[name] = np.array([v for v in lat if v < 1000.0 * interval])
        return out

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def _floor(mode: str, port: int) -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "earsight.bench.floors", mode, str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        ready = threading.Event()

        def wait_ready() -> None:
            if proc.stdout is not None and proc.stdout.readline().startswith("ready"):
                ready.set()

        threading.Thread(target=wait_ready, daemon=True).start()
        if not ready.wait(30.0):
            raise RuntimeError(f"the {mode} floor did not start")
        yield f"earsight-floor-{mode}:input_1"
    finally:
        proc.kill()
        proc.wait(5)


def _figures(label: str, lat: np.ndarray, events: int) -> dict[str, Any]:
    if lat.size == 0:
        return {f"{label}: detected": f"0 / {events}"}
    return {
        f"{label}: detected": f"{lat.size} / {events}",
        f"{label}: mean (ms)": float(lat.mean()),
        f"{label}: p50 (ms)": float(np.percentile(lat, 50)),
        f"{label}: p99 (ms)": float(np.percentile(lat, 99)),
    }


def _above(address: str, index: int, threshold: float = 0.5) -> Detect:
    def detect(addr: str, values: list[Any]) -> bool | None:
        return float(values[index]) > threshold if addr == address and len(values) > index else None

    return detect


def _event(address: str) -> Detect:
    """Each message at ``address`` is an event; any other message ends it (level arrives every block)."""

    def detect(addr: str, values: list[Any]) -> bool | None:
        return addr == address

    return detect


def bench_latency(ear: str = "crepe", clicks: int = 40, interval: float = 0.25) -> dict[str, Any]:
    """Per stream: audio in (JACK) -> OSC out, beside the floors and the declared latency."""
    from ..osc import message

    jackd = ensure_jack(SR, BLOCK)
    results: dict[str, Any] = {"one audio block (ms)": 1000.0 * BLOCK / SR}
    try:
        player = Player()
        try:
            for mode, label in (("c", "floor: pyo's C-side OSC sender"), ("callback", "floor: pyo's Python callback")):
                sock = _udp()
                try:
                    with _floor(mode, sock.getsockname()[1]) as target:
                        lat = player.run(target, sock, {"peak": _above("/peak", 0)}, count=clicks, interval=interval)
                    results.update(_figures(label, lat["peak"], clicks))
                finally:
                    sock.close()
            with running_server("--no-view", "--backend", "jack", "--input", "device", "--ear", ear) as served:
                server = served.address
                sock = _udp()
                try:
                    before = status_of(server)
                    sock.sendto(message("/ear/notify"), server)
                    for stream in ("level", "onset", "pitch"):
                        sock.sendto(message("/ear/stream", stream, 1000.0), server)
                    time.sleep(0.5)
                    lat = player.run("earsight:input_1", sock, {"level": _above("/ear/level", 1), "onset": _event("/ear/onset")},
                                     count=clicks, interval=interval)
                    results.update(_figures("earsight level (clicks)", lat["level"], clicks))
                    results.update(_figures("earsight onset (clicks)", lat["onset"], clicks))
                    lat = player.run("earsight:input_1", sock, {"pitch": _above("/ear/pitch", 1)}, kind="burst",
                                     count=clicks, interval=0.5)
                    pitch = f"earsight pitch, {ear} (tone bursts)"
                    results.update(_figures(pitch, lat["pitch"], clicks))
                    sock.sendto(message("/ear/notify/off"), server)
                    time.sleep(0.2)
                    after = status_of(server)
                finally:
                    sock.close()
            results[f"declared latency of the {ear} streams (ms)"] = number(after, "latency_ms")
            declared = number(after, "pitch_latency_ms")
            results[f"{pitch}: declared (ms)"] = declared
            if lat["pitch"].size:
                results[f"{pitch}: measured mean - declared (ms)"] = float(lat["pitch"].mean()) - declared
            results["JACK xruns while measuring"] = grew(before, after, "xruns")
        finally:
            player.close()
    finally:
        if jackd is not None:
            jackd.terminate()
            jackd.wait(5)
    return results
