"""``earsight bench``: figures, each beside a baseline measured in the same run.

Not a test: it prints what this machine does. Sections:
- latency: clicks played into the server's JACK input by a separate JACK client, timed until the
  ``level`` stream (computed after the ear's forward pass of the same frame) shows them at a real
  OSC client; p50/p99 against the declared latency.
- ears: real-time factor of each ear streaming (256-sample blocks at 48 kHz, as the server runs
  it) and offline; the baseline is the offline pass.
- xruns: JACK xruns over a period while streaming features under an OSC flood, against the same
  period of JACK with the server idle-free (baseline).
- osc: sustained commands per second answered by the server, against a bare python-osc
  receive loop on the same machine.
Stages that add their own figures (render, layout, sonify) are included when present.
"""

from __future__ import annotations

import argparse
import importlib
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from .audio import AudioConfig, Source
from .ears import registry
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


# ---------------------------------------------------------------- latency


def _ensure_jack(sample_rate: int, block: int) -> Any:
    from . import jack as jackmod

    if jackmod.running():
        return None
    return jackmod.start_dummy(sample_rate, block)


def bench_latency(ear: str = "crepe", clicks: int = 40, interval: float = 0.25) -> dict[str, float]:
    """Audio in -> OSC out, with a real JACK client playing clicks and a real UDP client listening."""
    import jack

    from .engine import Engine, EngineConfig

    sample_rate, block = 48000, 256
    jackd = _ensure_jack(sample_rate, block)
    engine = Engine(EngineConfig(port=0, ear=ear, source=Source("device"), audio=AudioConfig(backend="jack")))
    engine.start()
    sent: list[float] = []
    state = {"next": 0}
    client = jack.Client("earsight-bench-clicks", no_start_server=True)
    port = client.outports.register("click")

    @client.set_process_callback  # type: ignore[misc]
    def process(frames: int) -> None:
        buf = port.get_array()
        buf[:] = 0.0
        now = client.last_frame_time
        if state["next"] and now >= state["next"] and len(sent) < clicks:
            buf[:32] = 0.9  # a 32-sample click at the start of this cycle
            sent.append(time.time())
            state["next"] += int(interval * client.samplerate)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    received: list[float] = []
    try:
        from pythonosc.osc_packet import OscPacket

        from .streams import message

        sock.sendto(message("/ear/notify"), engine.osc.address)
        sock.sendto(message("/ear/stream", "level", float(engine.listening.ear.frame_rate)), engine.osc.address)
        client.activate()
        client.connect(port, f"{engine.config.audio.jack_name}:input_1")
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
        declared = engine.latency_ms()
        stats = engine.status()
    finally:
        client.deactivate()
        client.close()
        engine.stop()
        sock.close()
        if jackd is not None:
            jackd.terminate()
            jackd.wait(5)
    # Each detection belongs to the newest click sent before it (a missed click must not shift the rest).
    sent_times = np.array(sent)
    lat_list = []
    for arrived in received:
        before = sent_times[sent_times <= arrived]
        if before.size:
            lat_list.append(1000.0 * (arrived - before[-1]))
    lat = np.array(lat_list)
    if lat.size == 0:
        return {"clicks detected": 0.0}
    return {
        "clicks sent / detected": f"{len(sent)} / {len(received)}",  # type: ignore[dict-item]
        "latency p50 (ms)": float(np.percentile(lat, 50)),
        "latency p99 (ms)": float(np.percentile(lat, 99)),
        "latency max (ms)": float(lat.max()),
        "declared latency (ms)": float(declared),
        "two audio blocks (ms)": 2000.0 * block / sample_rate,
        "p99 / declared": float(np.percentile(lat, 99) / declared),
        "xruns during": float(stats["xruns"]),  # type: ignore[arg-type]
    }


# ---------------------------------------------------------------- xruns under load


def bench_xruns(seconds: float = 20.0, ear: str = "crepe") -> dict[str, float]:
    from .engine import Engine, EngineConfig
    from .jack import XrunMonitor

    jackd = _ensure_jack(48000, 256)
    try:
        monitor = XrunMonitor("earsight-bench-xruns")
        time.sleep(seconds / 4)
        idle = monitor.count
        engine = Engine(EngineConfig(port=0, ear=ear, source=Source("demo"), audio=AudioConfig(backend="jack")))
        engine.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        from .streams import message

        try:
            for stream, rate in (("level", 100.0), ("layers", 100.0), ("act", 100.0), ("pitch", 100.0)):
                sock.sendto(message("/ear/stream", stream, rate), engine.osc.address)
            time.sleep(1.0)
            before = monitor.count
            stop = time.monotonic() + seconds
            flood = message("/ear/status")
            sent = 0
            while time.monotonic() < stop:  # an OSC flood: status requests, paced to ~2000/s
                for _ in range(20):
                    sock.sendto(flood, engine.osc.address)
                sent += 20
                time.sleep(0.01)
            loaded = monitor.count - before
            status = engine.status()
        finally:
            engine.stop()
            sock.close()
        monitor.close()
    finally:
        if jackd is not None:
            jackd.terminate()
            jackd.wait(5)
    return {
        f"JACK xruns idle in {seconds / 4:.0f} s (baseline)": float(idle),
        f"JACK xruns in {seconds:.0f} s, streaming + OSC flood": float(loaded),
        "OSC messages in the flood": float(sent),
        "late blocks seen by the audio callback": float(status["late_blocks"]),  # type: ignore[arg-type]
        "input samples dropped / skipped": float(status["dropped"]),  # type: ignore[arg-type]
    }


# ---------------------------------------------------------------- OSC throughput


def bench_osc(count: int = 20000) -> dict[str, float]:
    from pythonosc.osc_packet import OscPacket

    from .engine import Engine, EngineConfig
    from .streams import message

    def flood(target: tuple[str, int], expect: Callable[[bytes], bool]) -> tuple[float, int]:
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
                if expect(data):
                    got += 1

        reader = threading.Thread(target=receive)
        reader.start()
        start = time.perf_counter()
        for i in range(count):
            sock.sendto(message("/ear/sync", i), target)
            if i % 200 == 199:
                time.sleep(0.001)  # a steady stream, not one burst
        reader.join()
        elapsed = time.perf_counter() - start - 1.0  # the reader's final timeout
        sock.close()
        return max(elapsed, 1e-6), got

    # Baseline: a bare python-osc parse-and-echo loop.
    bare = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bare.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    bare.bind(("127.0.0.1", 0))
    bare.settimeout(1.5)
    stop = threading.Event()

    def echo() -> None:
        while not stop.is_set():
            try:
                data, sender = bare.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            for m in OscPacket(data).messages:
                bare.sendto(message("/ear/synced", *m.message.params), sender)

    echo_thread = threading.Thread(target=echo)
    echo_thread.start()
    base_time, base_got = flood(bare.getsockname(), lambda d: d.startswith(b"/ear/synced"))
    stop.set()
    echo_thread.join()
    bare.close()

    engine = Engine(EngineConfig(port=0, source=Source("silence"), audio=AudioConfig(backend="manual")))
    engine.start()
    try:
        ours_time, ours_got = flood(engine.osc.address, lambda d: d.startswith(b"/ear/synced"))
    finally:
        engine.stop()
    return {
        "commands sent": float(count),
        "answered by earsight": float(ours_got),
        "earsight commands/s": ours_got / ours_time,
        "bare python-osc echo answered": float(base_got),
        "bare python-osc echo msgs/s (baseline)": base_got / base_time,
        "earsight / baseline": (ours_got / ours_time) / max(base_got / base_time, 1e-9),
    }


# ---------------------------------------------------------------- the stages' own figures


STAGE_BENCHES = (
    # module, function, title, whether it takes an Ear (else the ear's name)
    ("earsight.layout", "bench_layout", "layout (ours vs networkx.spring_layout)", True),
    ("earsight.render", "bench_render", "render at 1280x720, every neuron drawn", True),
    ("earsight.sonify", "bench_sonify", "sonify (dream steps/s, live real-time factors)", False),
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
        _print("osc: /ear/sync round trips", results["osc"])
    if "stages" in args.only:
        results["stages"] = bench_stages(loadable or ears)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
    return 0
