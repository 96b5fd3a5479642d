"""xruns through JACK under load, against an idle baseline."""

from __future__ import annotations

import socket
import time

from ..cli import running_server
from .common import ensure_jack, grew, number, status_of, xrun_baselines, xrun_rows


def bench_xruns(seconds: float = 20.0, ear: str = "crepe") -> dict[str, float]:
    """JACK xruns with the server streaming every feature at full rate under an OSC flood."""
    from ..audio.jack import XrunMonitor
    from ..osc import message

    jackd = ensure_jack(48000, 256)
    try:
        monitor = XrunMonitor("earsight-bench-xruns")
        baselines = xrun_baselines(monitor, seconds / 4)
        with running_server("--no-view", "--backend", "jack", "--input", "demo", "--ear", ear) as served:
            server = served.address
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(0.5)
            sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # streams go here, unread
            sink.bind(("127.0.0.1", 0))
            try:
                for stream in ("level", "layers", "act", "pitch"):
                    sock.sendto(message("/ear/stream", stream, 1000.0, sink.getsockname()[1]), server)
                time.sleep(1.0)
                before = monitor.count
                start = status_of(server)
                stop = time.monotonic() + seconds
                flood = message("/ear/sync", 1)
                sent = 0
                while time.monotonic() < stop:  # an OSC flood, paced to about 2000 messages/s
                    for _ in range(20):
                        sock.sendto(flood, server)
                    sent += 20
                    time.sleep(0.01)
                loaded = monitor.count - before
                end = status_of(server)
            finally:
                sock.close()
                sink.close()
        monitor.close()
    finally:
        if jackd is not None:
            jackd.terminate()
            jackd.wait(5)

    def delta(key: str) -> float:
        return grew(start, end, key)

    return {
        **xrun_rows(baselines, seconds / 4, loaded, seconds, "streaming + OSC flood"),
        "OSC messages in the flood": float(sent),
        "late blocks seen by the audio callback": delta("late_blocks"),
        "input samples dropped / skipped": delta("dropped"),
        "server cpu % (of one core, last interval)": number(end, "cpu"),
    }
