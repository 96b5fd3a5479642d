"""A fuzzer of our own: hostile and clumsy datagrams at a steady rate, with pings between.

Kinds (drawn at random, repeatable by seed): random bytes, truncated messages, lying type tags,
invalid UTF-8 in the address, the type tags and string arguments, real commands with wrong
arguments, nested, oversized and far-future bundles, zero-length packets. Every ``ping_every``
datagrams a ``/ear/ping`` goes from a socket of its own; the figures are how many were answered,
how many ``/ear/fail`` answers the fuzzing socket got (rate-limited per address by design), the
server's own counters (malformed, errors, restarts, xruns) and its memory before and after.
Targets only loopback.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..osc import message
from .common import grew, status_of

# Real commands that change nothing costly: the fuzzer sends them wrong arguments (and right ones).
SAFE_ADDRESSES = ("/ear/ping", "/ear/sync", "/ear/select", "/ear/top", "/ear/stream", "/ear/status", "/ear/model/info")


def _pad(b: bytes) -> bytes:
    return b + b"\0" * (4 - len(b) % 4)


def _osc_string(b: bytes) -> bytes:
    return _pad(b)


def _timetag(seconds: float) -> bytes:
    ntp = seconds + 2208988800.0
    return struct.pack(">II", int(ntp) & 0xFFFFFFFF, int((ntp % 1) * 2**32))


def _bundle(elements: list[bytes], when: bytes) -> bytes:
    return b"#bundle\0" + when + b"".join(struct.pack(">i", len(e)) + e for e in elements)


class Fuzz:
    """Datagrams of every hostile kind, drawn by a seeded generator."""

    def __init__(self, seed: int = 0, now: float | None = None) -> None:
        self.rng = np.random.default_rng(seed)
        self.now = time.time() if now is None else now
        """Far-future timetags count from here (fixed: the same seed draws the same datagrams)."""
        self.kinds: list[Callable[[], bytes]] = [
            self.random_bytes, self.truncated, self.lying_tags, self.bad_utf8, self.wrong_args,
            self.nested_bundle, self.oversized_bundle, self.future_bundle, self.empty,
        ]

    def _bytes(self, n: int) -> bytes:
        return self.rng.integers(0, 256, n, dtype=np.uint8).tobytes()

    def _valid(self) -> bytes:
        address = SAFE_ADDRESSES[int(self.rng.integers(len(SAFE_ADDRESSES)))]
        args: list[object] = []
        for _ in range(int(self.rng.integers(0, 4))):
            pick = int(self.rng.integers(3))
            args.append([int(self.rng.integers(-5, 100000)), float(self.rng.normal() * 1e3), "conv" + str(self.rng.integers(9))][pick])
        return message(address, *args)

    def random_bytes(self) -> bytes:
        return self._bytes(int(self.rng.integers(1, 600)))

    def truncated(self) -> bytes:
        whole = self._valid()
        return whole[: int(self.rng.integers(1, max(2, len(whole))))]

    def lying_tags(self) -> bytes:
        tags = "".join(self.rng.choice(list("ifsbhdTFNIc[]"), int(self.rng.integers(1, 12))))
        return _osc_string(b"/ear/ping") + _osc_string(b"," + tags.encode()) + self._bytes(int(self.rng.integers(0, 16)))

    def bad_utf8(self) -> bytes:
        junk = b"\xff\xfe\xc3\x28"
        where = int(self.rng.integers(3))
        address = b"/ear/" + (junk if where == 0 else b"ping")
        tags = b",s" + (junk if where == 1 else b"")
        text = b"conv" + (junk if where == 2 else b"1")
        return _osc_string(address) + _osc_string(tags) + _osc_string(text)

    def wrong_args(self) -> bytes:
        return self._valid()

    def nested_bundle(self) -> bytes:
        inner = self._valid()
        for _ in range(int(self.rng.integers(1, 12))):
            inner = _bundle([inner, self._valid()] if self.rng.random() < 0.5 else [inner], _timetag(0.0)[:4] + b"\0\0\0\1")
        return inner

    def oversized_bundle(self) -> bytes:
        claim = int(self.rng.integers(1, 2**31 - 1))  # an element longer than the packet (or negative)
        return b"#bundle\0" + _timetag(0.0) + struct.pack(">i", claim if self.rng.random() < 0.8 else -claim) + self._valid()

    def future_bundle(self) -> bytes:
        ahead = float(self.rng.choice([3600.0 * 24 * 365, 1e6, 400.0]))  # beyond the server's horizon
        return _bundle([self._valid()], _timetag(self.now + ahead))

    def empty(self) -> bytes:
        return b""

    def __call__(self) -> bytes:
        return self.kinds[int(self.rng.integers(len(self.kinds)))]()


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def fuzz_server(server: tuple[str, int], pid: int, count: int, rate: float = 10000.0, ping_every: int = 100,
                seed: int = 0) -> dict[str, float]:
    """Send ``count`` fuzzed datagrams at ``rate`` per second with a ping every ``ping_every``."""
    fuzz = Fuzz(seed)
    packets = [fuzz() for _ in range(min(count, 20000))]  # drawn ahead: the sender must keep the rate
    hostile = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hostile.bind(("127.0.0.1", 0))
    pinger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    pinger.bind(("127.0.0.1", 0))
    pinger.settimeout(0.5)
    counts = {"pongs": 0, "fails": 0}
    stop = threading.Event()

    def read(sock: socket.socket, key: str, prefix: bytes) -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                data, _ = sock.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            counts[key] += data.startswith(prefix)

    readers = [threading.Thread(target=read, args=(pinger, "pongs", b"/ear/pong"), daemon=True),
               threading.Thread(target=read, args=(hostile, "fails", b"/ear/fail"), daemon=True)]
    for t in readers:
        t.start()
    before = status_of(server)
    rss_before = rss_kb(pid)
    ping = message("/ear/ping")
    pings = 0
    rss_tenth = 0
    curve: list[float] = []
    start = time.perf_counter()
    for i in range(count):
        if i and i % max(count // 10, 1) == 0:
            curve.append(rss_kb(pid) / 1024.0)
        if i == count // 10:
            rss_tenth = rss_kb(pid)  # after the first tenth: what growth is left is a leak
        try:
            hostile.sendto(packets[i % len(packets)], server)
        except OSError:  # e.g. a packet larger than the socket allows: not the server's problem
            pass
        if i % ping_every == ping_every - 1:
            pinger.sendto(ping, server)
            pings += 1
        if i % 50 == 49:
            delay = start + (i + 1) / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
    elapsed = time.perf_counter() - start
    deadline = time.monotonic() + 5.0
    while counts["pongs"] < pings and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    for t in readers:
        t.join()
    after = status_of(server)
    hostile.close()
    pinger.close()

    def delta(key: str) -> float:
        return grew(before, after, key)

    return {
        "datagrams sent": float(count),
        "rate sent (/s)": count / elapsed,
        "pings answered / sent": f"{counts['pongs']} / {pings}",  # type: ignore[dict-item]
        "pings answered (fraction)": counts["pongs"] / max(pings, 1),
        "/ear/fail answers received": float(counts["fails"]),
        "/ear/fail answers held back (rate limit)": delta("fails_suppressed"),
        "malformed (server's count)": delta("malformed"),
        "errors (datagrams or handlers that raised)": delta("errors"),
        "thread restarts": delta("restarts"),
        "xruns": delta("xruns"),
        "server RSS before (MB)": rss_before / 1024.0,
        "server RSS after a tenth (MB)": rss_tenth / 1024.0,
        "server RSS after (MB)": rss_kb(pid) / 1024.0,
        "RSS growth over the last nine tenths (%)": 100.0 * (rss_kb(pid) - rss_tenth) / max(rss_tenth, 1),
        # the curve: a leak climbs to the end, an allocator warming up flattens
        **{f"RSS after {10 * (k + 1)}% (MB)": mb for k, mb in enumerate(curve)},
    }


def bench_fuzz(count: int = 1_000_000, rate: float = 10000.0) -> dict[str, float]:
    from ..cli import running_server

    with running_server("--no-view", "--backend", "manual", "--input", "test", "--test", "sine") as served:
        return fuzz_server(served.address, served.process.pid, count, rate)
