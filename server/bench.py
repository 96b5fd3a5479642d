"""``earsight bench``: figures, each beside a baseline measured in the same run.

Not a test: it prints what this machine does. Sections:
- latency: clicks played into the server's JACK input by a separate JACK client, timed until the
  ``level`` stream (computed after the ear's forward pass of the same frame) shows them at a real
  OSC client; p50/p99 against the declared latency.
- ears: real-time factor of each ear streaming (256-sample blocks at 48 kHz, as the server runs
  it) and offline; the baseline is the offline pass.
- xruns: JACK xruns over a period while the server streams every feature at full rate under an
  OSC flood, against a quarter of that period of JACK without the server (baseline).
- osc: the fraction of paced /ear/sync requests answered at 2k-20k per second, against a bare
  python-osc parse-and-echo loop on the same machine.
The server runs as its own process (:func:`earsight.cli.running_server`), as users run it: the
bench's clients must not share its GIL.
Stages that add their own figures (render, layout, sonify) are included when present.
"""

from __future__ import annotations

import argparse
import importlib
import json
import socket
import threading
import time
from typing import Any

import numpy as np

from .cli import running_server
from .ears import registry
from .errors import EarsightError
from .resample import Resampler

SECTIONS = ("ears", "latency", "xruns", "osc", "stages")


def _print(title: str, rows: dict[str, Any]) -> None:
    print(f"\n== {title}")
    for key, value in rows.items():
        print(f"  {key:38s} {value:.4g}" if isinstance(value, float) else f"  {key:38s} {value}")


# ---------------------------------------------------------------- ears


def bench_ear(name: str, seconds: float = 10.0, sample_rate: int = 48000, block: int = 256) -> dict[str, float]:
    """Real-time factors (audio seconds per compute second; > 1 is faster than real time)."""
    ear = registry.load(name)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    audio = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    at_ear = Resampler(sample_rate, ear.sample_rate).process(audio)
    ear.reset()
    ear.analyse(at_ear[: ear.window * 2])  # warm up
    start = time.perf_counter()
    ear.analyse(at_ear)
    offline = time.perf_counter() - start
    ear.reset()
    resampler = Resampler(sample_rate, ear.sample_rate)
    start = time.perf_counter()
    for i in range(0, audio.size, block):
        ear.stream(resampler.process(audio[i : i + block]))
    streaming = time.perf_counter() - start
    return {
        "offline RTF (x real time)": seconds / offline,
        "streaming RTF (x real time)": seconds / streaming,
        "streaming cost / offline cost": streaming / offline,
    }


# ---------------------------------------------------------------- a server as users run it


def status_of(server: tuple[str, int]) -> dict[str, object]:
    """/ear/status as a dict, asked from a socket of its own (the bench's others are busy)."""
    from pythonosc.osc_packet import OscPacket

    from .streams import message

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(1.0)
        for _ in range(10):
            sock.sendto(message("/ear/status"), server)
            try:
                data, _ = sock.recvfrom(65536)
            except TimeoutError:
                continue
            for m in OscPacket(data).messages:
                if m.message.address == "/ear/status.reply":
                    p = list(m.message.params)
                    return dict(zip(p[::2], p[1::2], strict=True))
    raise EarsightError("no /ear/status.reply")


# ---------------------------------------------------------------- latency


def _ensure_jack(sample_rate: int, block: int) -> Any:
    from . import jack as jackmod

    if jackmod.running():
        return None
    return jackmod.start_dummy(sample_rate, block)


def bench_latency(ear: str = "crepe", clicks: int = 40, interval: float = 0.25) -> dict[str, float]:
    """Audio in -> OSC out, with a real JACK client playing clicks and a real UDP client listening."""
    import jack
    from pythonosc.osc_packet import OscPacket

    from .streams import message

    sample_rate, block = 48000, 256
    jackd = _ensure_jack(sample_rate, block)
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
    declared = float(after["latency_ms"])  # type: ignore[arg-type]
    return {
        "clicks sent / detected": f"{len(sent)} / {len(received)}",  # type: ignore[dict-item]
        "latency p50 (ms)": float(np.percentile(lat, 50)),
        "latency p99 (ms)": float(np.percentile(lat, 99)),
        "latency max (ms)": float(lat.max()),
        "declared latency (ms)": declared,
        "two audio blocks (ms)": 2000.0 * block / sample_rate,
        "p99 / declared": float(np.percentile(lat, 99) / declared),
        "JACK xruns while clicking": float(after["xruns"]) - float(before["xruns"]),  # type: ignore[arg-type]
    }


# ---------------------------------------------------------------- xruns under load


def bench_xruns(seconds: float = 20.0, ear: str = "crepe") -> dict[str, float]:
    """JACK xruns with the server streaming every feature at full rate under an OSC flood."""
    from .jack import XrunMonitor
    from .streams import message

    jackd = _ensure_jack(48000, 256)
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
        return float(end[key]) - float(start[key])  # type: ignore[arg-type]

    return {
        f"JACK xruns idle in {seconds / 4:.0f} s (baseline)": float(idle),
        f"JACK xruns in {seconds:.0f} s, streaming + OSC flood": float(loaded),
        "OSC messages in the flood": float(sent),
        "late blocks seen by the audio callback": delta("late_blocks"),
        "input samples dropped / skipped": delta("dropped"),
        "server cpu % (of one core, last interval)": float(end["cpu"]),  # type: ignore[arg-type]
    }


# ---------------------------------------------------------------- OSC throughput


def bench_osc(rates: tuple[int, ...] = (2000, 5000, 10000, 20000), seconds: float = 1.0) -> dict[str, float]:
    """Sustained /ear/sync round trips at paced rates; a bare python-osc echo loop is the baseline."""
    from pythonosc.osc_packet import OscPacket

    from .streams import message

    def run(target: tuple[str, int], rate: int) -> float:
        """Fraction of ``rate * seconds`` paced requests answered."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(1.0)
        got = 0

        def receive() -> None:
            nonlocal got
            while True:
                try:
                    data, _ = sock.recvfrom(65536)
                except (TimeoutError, OSError):
                    return
                got += data.startswith(b"/ear/synced")

        reader = threading.Thread(target=receive)
        reader.start()
        count = int(rate * seconds)
        packet = message("/ear/sync", 1)
        start = time.perf_counter()
        for i in range(count):
            sock.sendto(packet, target)
            if i % 50 == 49:  # pace in small batches: a steady stream at `rate`
                delay = start + (i + 1) / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
        reader.join()
        sock.close()
        return got / count

    bare = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bare.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    bare.bind(("127.0.0.1", 0))
    bare.settimeout(0.2)
    stop = threading.Event()

    def echo() -> None:  # the baseline: parse with python-osc and answer, nothing else
        while not stop.is_set():
            try:
                data, sender = bare.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            for m in OscPacket(data).messages:
                bare.sendto(message("/ear/synced", *m.message.params), sender)

    echo_thread = threading.Thread(target=echo)
    echo_thread.start()
    results: dict[str, float] = {}
    try:
        for rate in rates:
            results[f"bare python-osc echo: answered at {rate}/s (baseline)"] = run(bare.getsockname(), rate)
    finally:
        stop.set()
        echo_thread.join()
        bare.close()
    with running_server("--no-view", "--backend", "manual", "--input", "silence") as served:
        for rate in rates:
            results[f"earsight: answered at {rate}/s"] = run(served.address, rate)
    best = [r for r in rates if results[f"earsight: answered at {r}/s"] >= 0.999]
    results["earsight: highest rate with no loss (/s)"] = float(max(best) if best else 0)
    return results


# ---------------------------------------------------------------- the stages' own figures


STAGE_BENCHES = (
    # module, function, title, whether it takes an Ear (else the ear's name)
    ("earsight.layout", "bench_layout", "layout (ours vs networkx.spring_layout)", True),
    ("earsight.render", "bench_render", "render at 1280x720, every neuron drawn", True),
    ("earsight.sonify.bench", "bench_sonify", "sonify (dream steps/s, live real-time factors)", False),
)


def bench_stages(ears: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for module, function, title, takes_ear in STAGE_BENCHES:
        fn = getattr(importlib.import_module(module), function)
        for name in ears:
            results[f"{function} {name}"] = figures = fn(registry.load(name) if takes_ear else name)
            _print(f"{title}: {name}", figures)
    return results


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--only", nargs="*", choices=SECTIONS, default=list(SECTIONS), help="sections to run")
    p.add_argument("--ears", nargs="*", default=None, help="ears to measure (default: every ear that loads)")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the xrun measurement")
    p.add_argument("--json", default=None, help="also write all figures to this JSON file")


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(1)  # as the server runs its ear
    results: dict[str, Any] = {}
    ears = args.ears or registry.names()
    loadable = []
    if "ears" in args.only:
        for name in ears:
            try:
                results[f"ear {name}"] = bench_ear(name)
                loadable.append(name)
            except Exception as exc:  # an ear that cannot load here is reported, not fatal to the bench
                print(f"\n== ear {name}: cannot load ({type(exc).__name__}: {exc})")
                continue
            _print(f"ear {name} (1 torch thread)", results[f"ear {name}"])
    if "latency" in args.only:
        results["latency"] = bench_latency()
        _print("latency: audio in (JACK) -> level stream out (OSC), crepe", results["latency"])
    if "xruns" in args.only:
        results["xruns"] = bench_xruns(args.seconds)
        _print("xruns: JACK dummy, 48 kHz, 256-sample blocks", results["xruns"])
    if "osc" in args.only:
        results["osc"] = bench_osc()
        _print("osc: sustained /ear/sync round trips (fraction answered)", results["osc"])
    if "stages" in args.only:
        results["stages"] = bench_stages(loadable or ears)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    return 0
