"""Real-time factors of each ear, streaming as the server runs it and offline (the baseline)."""

from __future__ import annotations

import time

import numpy as np

from ..ears import registry
from ..resample import Resampler


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
