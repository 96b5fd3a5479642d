"""Audio in -> OSC out through JACK: latency of clicks, and xruns under load against an idle baseline."""

from __future__ import annotations

import socket
import time

import numpy as np

from ..cli import running_server
from .common import ensure_jack, grew, number, status_of


def bench_latency(ear: str = "crepe", clicks: int = 40, interval: float = 0.25) -> dict[str, float]:
    """Audio in -> OSC out, with a real JACK client playing clicks and a real UDP client listening."""
    import jack
    from pythonosc.osc_packet import OscPacket

    from ..osc import message

    sample_rate, block = 48000, 256
    jackd = ensure_jack(sample_rate, block)
    sent: list[float] = []
    received: list[float] = []
    state = {"next": 0}
    try:
        with running_server("--no-view", "--backend", "jack", "--input", "device", "--ear", ear) as served:
            server = served.address
            client = jack.Client("earsight-bench-clicks", no_start_server=True)
            port = client.outports.register("click")

            @client.set_process_callback  # type: ignore[misc]
            def process(frames: int) -> None:
                buf = port.get_array()
                buf[:] = 0.0
                if state["next"] and client.last_frame_time >= state["next"] and len(sent) < clicks:
                    buf[:32] = 0.9  # a 32-sample click at the start of this cycle
                    sent.append(time.time())
                    state["next"] += int(interval * client.samplerate)

            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(0.5)
            try:
                before = status_of(server)
                sock.sendto(message("/ear/notify"), server)
                sock.sendto(message("/ear/stream", "level", 1000.0), server)  # every frame
                client.activate()
                client.connect(port, "earsight:input_1")
                time.sleep(0.5)
                state["next"] = client.last_frame_time + sample_rate // 4
                above = False
                deadline = time.monotonic() + clicks * interval + 5.0
                while time.monotonic() < deadline and len(received) < clicks:
                    try:
                        data, _ = sock.recvfrom(65536)
                    except TimeoutError:
                        continue
                    arrived = time.time()
                    for m in OscPacket(data).messages:
                        if m.message.address != "/ear/level":
                            continue
                        peak = float(m.message.params[1])
                        if peak > 0.5 and not above:
                            received.append(arrived)
                        above = peak > 0.5
                sock.sendto(message("/ear/notify/off"), server)
                time.sleep(0.2)
                after = status_of(server)
            finally:
                client.deactivate()
                client.close()
                sock.close()
    finally:
        if jackd is not None:
            jackd.terminate()
            jackd.wait(5)
    # Each detection belongs to the newest click sent before it (a missed click must not shift the rest).
    sent_times = np.array(sent)
    lat = np.array([1000.0 * (t - sent_times[sent_times <= t][-1]) for t in received if (sent_times <= t).any()])
    if lat.size == 0:
        return {"clicks detected": 0.0}
    declared = number(after, "latency_ms")
    return {
        "clicks sent / detected": f"{len(sent)} / {len(received)}",  # type: ignore[dict-item]
        "latency p50 (ms)": float(np.percentile(lat, 50)),
        "latency p99 (ms)": float(np.percentile(lat, 99)),
        "latency max (ms)": float(lat.max()),
        "declared latency (ms)": declared,
        "two audio blocks (ms)": 2000.0 * block / sample_rate,
        "p99 / declared": float(np.percentile(lat, 99) / declared),
        "JACK xruns while clicking": grew(before, after, "xruns"),
    }


def bench_xruns(seconds: float = 20.0, ear: str = "crepe") -> dict[str, float]:
    """JACK xruns with the server streaming every feature at full rate under an OSC flood."""
    from ..audio.jack import XrunMonitor
    from ..osc import message

    jackd = ensure_jack(48000, 256)
    try:
        monitor = XrunMonitor("earsight-bench-xruns")
        time.sleep(seconds / 4)
        idle = monitor.count
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
        f"JACK xruns idle in {seconds / 4:.0f} s (baseline)": float(idle),
        f"JACK xruns in {seconds:.0f} s, streaming + OSC flood": float(loaded),
        "OSC messages in the flood": float(sent),
        "late blocks seen by the audio callback": delta("late_blocks"),
        "input samples dropped / skipped": delta("dropped"),
        "server cpu % (of one core, last interval)": number(end, "cpu"),
    }
