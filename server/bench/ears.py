"""Real-time factors of each ear, streaming as the server runs it and offline (the baseline); for
CREPE also torchcrepe's own network on the same windows."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..ears import registry
from ..ears.base import Ear
from ..resample import Resampler

REPEATS = 3
"""Each figure is the best of this many runs, as timeit does: this machine's neighbours only ever
slow a run down, never speed it up."""


def best_time(run: Callable[[], object], repeats: int = REPEATS, budget: float = 20.0) -> float:
    """The shortest wall time of up to ``repeats`` calls of ``run``, in seconds; no more calls
    once ``budget`` seconds are spent (crepe-full takes a minute a run)."""
    times: list[float] = []
    while len(times) < repeats and sum(times) < budget:
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_ear(name: str, seconds: float = 10.0, sample_rate: int = 48000, block: int = 256) -> dict[str, float]:
    """Real-time factors (audio seconds per compute second; > 1 is faster than real time)."""
    ear = registry.load(name)
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    audio = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    at_ear = Resampler(sample_rate, ear.sample_rate).process(audio)
    ear.reset()
    ear.analyse(at_ear[: ear.window * 2])  # warm up
    offline = best_time(lambda: ear.analyse(at_ear))

    def stream() -> None:
        ear.reset()
        resampler = Resampler(sample_rate, ear.sample_rate)
        for i in range(0, audio.size, block):
            ear.stream(resampler.process(audio[i : i + block]))

    streaming = best_time(stream)
    figures = {
        "offline RTF (x real time)": seconds / offline,
        "streaming RTF (x real time)": seconds / streaming,
        "streaming cost / offline cost": streaming / offline,
    }
    if name.startswith("crepe"):
        figures.update(_torchcrepe(ear, at_ear, seconds, offline))
    return figures


def _torchcrepe(ear: Ear, audio: np.ndarray, seconds: float, ours: float) -> dict[str, float]:
    """torchcrepe's own network on the same windows, batched as its ``predict`` does (the baseline
    for offline analysis): our analyse against it, on the same thread count."""
    import torch

    from ..ears import crepe

    capacity = "tiny" if ear.name == "crepe" else ear.name.removeprefix("crepe-")
    reference = crepe.reference_network(capacity)
    padded = np.concatenate([np.zeros(ear.window - ear.hop, np.float32), audio])
    windows = crepe.normalise(torch.from_numpy(padded).unfold(0, ear.window, ear.hop))
    batch = 512 if capacity == "tiny" else 32
    with torch.inference_mode():
        reference(windows[:batch])  # warm up
        theirs = best_time(lambda: [reference(windows[i : i + batch]) for i in range(0, windows.shape[0], batch)])
    return {
        "torchcrepe's own network, offline RTF (x real time)": seconds / theirs,
        "our analyse / torchcrepe (speed-up)": theirs / ours,
    }
