"""A soak: the server at full load for a long while, its memory and counters sampled as it goes.

Full load: every stream the ear gives at its full rate to a subscriber, the picture pulled by a
viewer (the MJPEG page), a live dream of selected neurons, and an OSC flood of a parameter at
``flood`` messages per second. Reports memory growth (RSS at the end against the first minute's
settled level), xruns against an idle baseline, thread restarts, and the counters.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.request

from tqdm import tqdm

from ..audio.jack import XrunMonitor
from ..cli import Served, running_server
from ..osc import message
from .common import (
    ask,
    ensure_jack,
    grew,
    key_values,
    number,
    status_of,
    xrun_baselines,
    xrun_rows,
)
from .fuzz import rss_kb


def bench_soak(seconds: float = 1800.0, flood: float = 10000.0, ear: str = "crepe") -> dict[str, float]:
    jackd = ensure_jack(48000, 256)
    try:
        monitor = XrunMonitor("earsight-bench-soak")
        idle_for = min(60.0, seconds / 10)
        baselines = xrun_baselines(monitor, idle_for)
        with running_server("--backend", "jack", "--input", "demo", "--ear", ear, "--view-port", "0") as served:
            return _soak(served, monitor, seconds, flood, baselines, idle_for)
    finally:
        if jackd is not None:
            jackd.terminate()
            jackd.wait(5)


def _view_url(server: tuple[str, int]) -> str:
    return str(ask(server, "/ear/view/url", "/ear/view/url.reply", tries=30)[0])


def _soak(
    served: Served, monitor: XrunMonitor, seconds: float, flood: float, baselines: tuple[int, int], idle_for: float
) -> dict[str, float]:
    server, pid = served.address, served.process.pid
    control = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    control.bind(("127.0.0.1", 0))
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # streams arrive here and are drained
    sink.bind(("127.0.0.1", 0))
    sink.settimeout(0.2)
    stop = threading.Event()
    received = {"stream packets": 0, "view frames": 0}

    def drain() -> None:
        while not stop.is_set():
            try:
                sink.recvfrom(65536)
                received["stream packets"] += 1
            except (TimeoutError, OSError):
                continue

    url = _view_url(server)

    def watch() -> None:  # a viewer pulling single frames at about 30 per second
        while not stop.is_set():
            try:
                with urllib.request.urlopen(url.rstrip("/") + "/frame.jpg", timeout=5) as r:
                    r.read()
                received["view frames"] += 1
            except OSError:
                time.sleep(0.5)
            time.sleep(1 / 30)

    for stream in ("level", "layers", "act", "pitch"):
        control.sendto(message("/ear/stream", stream, 1000.0, sink.getsockname()[1]), server)
    control.sendto(message("/ear/select", "conv4", 1), server)
    control.sendto(message("/ear/sonify", "dream"), server)
    threads = [threading.Thread(target=drain, daemon=True), threading.Thread(target=watch, daemon=True)]
    for t in threads:
        t.start()
    time.sleep(5.0)
    first = status_of(server)
    xruns0 = monitor.count
    rss: list[int] = []
    packet = message("/ear/input/gain", 1.0)
    sent = 0
    start = time.monotonic()
    settled_at = start + min(60.0, seconds / 10)
    settled = 0
    with tqdm(total=int(seconds), unit="s", desc="soak") as bar:
        while (now := time.monotonic()) < start + seconds:
            for _ in range(int(flood / 100)):  # bursts every 10 ms
                control.sendto(packet, server)
            sent += int(flood / 100)
            time.sleep(max(0.0, 0.01 - (time.monotonic() - now)))
            if int(now - start) > bar.n:
                bar.update(int(now - start) - bar.n)
                rss.append(rss_kb(pid))
                if not settled and now >= settled_at:
                    settled = rss[-1]
    stop.set()
    for t in threads:
        t.join()
    last = status_of(server)
    dreaming = key_values(server, "/ear/sonify/status")
    control.close()
    sink.close()

    def delta(key: str) -> float:
        return grew(first, last, key)

    return {
        "seconds at full load": seconds,
        **xrun_rows(baselines, idle_for, monitor.count - xruns0, seconds, "full load"),
        "OSC messages sent (flood)": float(sent),
        "OSC messages received by the server": delta("received"),
        "OSC messages coalesced (a fader flood)": delta("coalesced"),
        "OSC inbox peak (kB waiting)": number(last, "inbox_peak") / 1024.0,
        "stream packets received": float(received["stream packets"]),
        "view frames received": float(received["view frames"]),
        "thread restarts": delta("restarts"),
        "errors": delta("errors"),
        "audio restarts": delta("audio_restarts"),
        "late blocks": delta("late_blocks"),
        "dropped samples": delta("dropped"),
        "output blocks run dry (audio process)": delta("output_underruns"),
        "input samples the ear skipped to stay live": delta("ear_skipped"),
        "dream: real-time factor (update time / chunk)": number(dreaming, "real_time_factor"),
        "dream: updates, ran dry, degraded, behind, starved": ", ".join(
            str(dreaming.get(k)) for k in ("updates", "ran_dry", "degraded", "behind", "starved")
        ),  # type: ignore[dict-item]
        "dream: steps per update now (asked 2)": number(dreaming, "steps_live"),
        "picture rate at the end (fps)": number(last, "view_fps"),
        "RSS settled (MB)": settled / 1024.0,
        "RSS at the end (MB)": (rss[-1] if rss else 0) / 1024.0,
        "RSS growth after settling (%)": 100.0 * ((rss[-1] if rss else 0) - settled) / max(settled, 1),
        # the curve: a leak climbs to the end, an allocator warming up flattens
        **{f"RSS at {10 * k}% (MB)": rss[min(len(rss) - 1, k * len(rss) // 10)] / 1024.0 for k in range(1, 10) if rss},
    }
