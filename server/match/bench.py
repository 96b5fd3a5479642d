"""``earsight bench --only match``: how fast a picture is matched, and whether a crossfade clicks or xruns.

- speed, one torch thread: a 1280x720 PNG and JPEG (scikit-image's coffee, scaled) read,
  classified and matched, median of 10; the baseline is the network's forward pass alone;
- clicks: beds crossfaded in pyo (manual backend, in this process): the largest sample step
  during the fades over the larger of the two beds' own largest steps (an equal-power fade
  cannot exceed sqrt 2);
- xruns: a server on JACK (48 kHz, 256) crossfading between pictures' beds every 1.5 s, against
  JACK's idle and busy baselines and the same server for as long with no picture.
"""

from __future__ import annotations

import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _pictures(folder: Path) -> list[Path]:
    from PIL import Image
    from skimage import data

    out = []
    for name, pixels in (("coffee", data.coffee()), ("moto", data.stereo_motorcycle()[0])):
        image = Image.fromarray(pixels).resize((1280, 720))
        for suffix in (".png", ".jpg"):
            path = folder / f"{name}{suffix}"
            image.save(path, quality=90) if suffix == ".jpg" else image.save(path)
            out.append(path)
    return out


def bench_speed(pictures: list[Path]) -> dict[str, float]:
    import torch

    from . import beds, image, library

    torch.set_num_threads(1)
    matcher = beds.Matcher(library.load(library.default_folder(progress=True)))
    rows: dict[str, float] = {}
    x = image.prepare(image.load(pictures[0]))
    with torch.inference_mode():
        image.network()(x)
        forward = []
        for _ in range(10):
            t0 = time.perf_counter()
            image.network()(x)
            forward.append(time.perf_counter() - t0)
    rows["network forward alone, ms (baseline)"] = 1e3 * statistics.median(forward)
    for path in pictures[:2]:
        parts: dict[str, list[float]] = {"read": [], "classify": [], "match": [], "total": []}
        for _ in range(10):
            t0 = time.perf_counter()
            pixels = image.load(path)
            t1 = time.perf_counter()
            probs = image.classify(pixels)
            t2 = time.perf_counter()
            matcher.match(probs)
            t3 = time.perf_counter()
            for key, v in (("read", t1 - t0), ("classify", t2 - t1), ("match", t3 - t2), ("total", t3 - t0)):
                parts[key].append(v)
        kind = path.suffix[1:].upper()
        for key, values in parts.items():
            rows[f"1280x720 {kind}: {key}, ms (median of 10)"] = 1e3 * statistics.median(values)
        rows[f"1280x720 {kind}: total / forward"] = statistics.median(parts["total"]) / statistics.median(forward)
    return rows


def bench_clicks(fades: int = 6, fade: float = 1.0) -> dict[str, float]:
    from ..audio import AudioConfig, AudioEngine, Source
    from . import bedaudio, beds, library

    sr = 48000
    lib = library.load(library.default_folder())
    names = [s.name for s in lib.sounds]
    loops = [bedaudio.mix(beds.Bed((names[i], names[(i + 5) % len(names)]), (0.6, 0.4), 0.0), lib, sr)
             for i in range(fades + 1)]
    own = max(float(np.abs(np.diff(b, axis=0)).max()) for b in loops)
    engine = AudioEngine(AudioConfig(backend="manual", sample_rate=sr), Source("silence"))
    engine.start()
    worst = 0.0
    try:
        engine.set_bed(loops[0], 0.05)
        time.sleep(0.5)
        engine.monitor.read()
        for bed in loops[1:]:
            engine.set_bed(bed, fade)
            got = []
            stop = time.monotonic() + fade + 0.2
            while time.monotonic() < stop:
                time.sleep(0.1)
                got.append(engine.monitor.read())
            played = np.concatenate(got).astype(np.float64)
            if played.shape[0] > 1:
                worst = max(worst, float(np.abs(np.diff(played, axis=0)).max()))
        late = engine.stats()["late_blocks"]
    finally:
        engine.stop()
    return {
        "crossfades": float(fades),
        "largest step inside the beds (baseline)": own,
        "largest step during the crossfades": worst,
        "ratio (<= 1.41 by construction: no click)": worst / own,
        "late blocks (manual backend)": float(late),
    }


def bench_xruns(pictures: list[Path], changes: int = 10) -> dict[str, Any]:
    from ..audio.jack import XrunMonitor
    from ..bench.common import ensure_jack, status_of, xrun_baselines, xrun_rows
    from ..cli import running_server
    from ..osc import message

    jackd = ensure_jack(48000, 256)
    try:
        monitor = XrunMonitor("earsight-bench-match")
        baselines = xrun_baselines(monitor, 5.0)
        folder = str(pictures[0].parent)
        with running_server("--no-view", "--backend", "jack", "--input", "demo", "--allow-dir", folder) as served:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.1", 0))
                sock.sendto(message("/ear/match/fade", 1.0), served.address)
                sock.sendto(message("/ear/match/library", "default"), served.address)
                time.sleep(3.0)  # the network and the library load
                before = monitor.count
                time.sleep(1.5 * changes)
                alone = monitor.count - before  # the server playing the demo, no picture: a baseline
                before = monitor.count
                t0 = time.monotonic()
                for i in range(changes):
                    sock.sendto(message("/ear/match", str(pictures[i % len(pictures)])), served.address)
                    time.sleep(1.5)
                seconds = time.monotonic() - t0
                loaded = monitor.count - before
            status = status_of(served.address)
        monitor.close()
    finally:
        if jackd is not None:
            jackd.terminate()
            jackd.wait(5)
    rows: dict[str, Any] = xrun_rows(baselines, 5.0, loaded, seconds, f"{changes} matches and crossfades")
    rows[f"JACK xruns in {seconds:.0f} s of the server alone, no picture (baseline)"] = float(alone)
    rows["server's xruns (its own count)"] = status.get("xruns")
    return rows


def bench_match() -> dict[str, dict[str, Any]]:
    from ..bench.common import show

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pictures = _pictures(Path(tmp))
        results["match speed"] = bench_speed(pictures)
        show("match: a 1280x720 picture on one torch thread, beside the network's forward pass", results["match speed"])
        results["match clicks"] = bench_clicks()
        show("match: crossfades between beds in pyo: largest step, beside the beds' own", results["match clicks"])
        results["match xruns"] = bench_xruns(pictures)
        show("match: JACK xruns while pictures change the bed every 1.5 s", results["match xruns"])
    return results
