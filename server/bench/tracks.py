"""Several tracks at once: each track's streaming speed and the JACK xruns, beside one track (the baseline).

The server runs as users run it (its own process, JACK dummy at 48 kHz/256) with ``--inputs N``
and one ear on every track (twins: one set of weights, the hops of a block in one batch). Each
track streams its ear's frames; a track keeps up when it makes its ear's frame rate in frames per
second of audio (the real-time ratio, 1.0).
"""

from __future__ import annotations

import time

from ..cli import running_server
from .common import grew, jack_server, number, per_minute, status_of


def bench_tracks(ear: str = "crepe", counts: tuple[int, ...] = (1, 4), seconds: float = 10.0) -> dict[str, float]:
    from ..audio.jack import XrunMonitor
    from ..ears import registry

    frame_rate = registry.load(ear).frame_rate
    out: dict[str, float] = {}
    with jack_server():
        monitor = XrunMonitor("earsight-bench-tracks")
        before = monitor.count
        time.sleep(seconds / 2)
        out["JACK xruns per minute with no server (the machine's own)"] = per_minute(monitor.count - before, seconds / 2)
        for n in counts:
            with running_server("--no-view", "--backend", "jack", "--input", "test", "--test", "sine",
                                "--ear", ear, "--inputs", str(n)) as served:
                time.sleep(3.0)  # past the start: the first hops warm the ear up
                start, xruns = status_of(served.address), monitor.count
                began = time.monotonic()
                time.sleep(seconds)
                end, span = status_of(served.address), time.monotonic() - began
                xruns = monitor.count - xruns
            label = f"{n} track{'s' if n > 1 else ''}{' (baseline)' if n == counts[0] else ''}"
            per_track = [grew(start, end, "frames" if k == 1 else f"frames.{k}") / span / frame_rate
                         for k in range(1, n + 1)]
            out[f"{label}: real-time ratio per track, slowest (1 = keeps up)"] = min(per_track)
            out[f"{label}: real-time ratio per track, mean"] = sum(per_track) / n
            out[f"{label}: ear worker busy (fraction of one core)"] = number(end, "ear_load")
            out[f"{label}: server CPU (% of one core)"] = number(end, "cpu")
            out[f"{label}: hops run in a batch with another track's, per second"] = grew(start, end, "batched") / span
            out[f"{label}: input waiting for the ear at the end (ms)"] = number(end, "lag_ms")
            out[f"{label}: input skipped to stay live (samples)"] = grew(start, end, "ear_skipped")
            out[f"{label}: JACK xruns per minute"] = per_minute(xruns, span)
        monitor.close()
    return out
