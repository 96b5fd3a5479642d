"""The sonifiers' figures for ``earsight bench``: dream steps per second, live real-time factors."""

from __future__ import annotations

import time

import numpy as np

from .deconv import auralise_with
from .dream import auto_frames, dream_with
from .live import Sonifier
from .params import defaults
from .target import target_from


def bench_sonify(ear_name: str, seconds: float = 2.0) -> dict[str, float | str]:
    """Dream steps per second and live real-time factors (compute / audio) with the default settings.

    The live factors time one update as the server does it (window ``window`` s, new audio
    ``chunk`` s, ``steps`` steps): below 1 is real time, on the threads torch has.
    """
    from ..ears import registry

    ear = registry.load(ear_name)
    values = defaults()
    rng = np.random.default_rng(0)
    shortest = ear.window + ear.hop  # an ear needs one whole window (musicnn's is 3 s)
    seconds = max(seconds, 2 * shortest / ear.sample_rate)
    t = np.arange(int(seconds * ear.sample_rate)) / ear.sample_rate
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.02 * rng.standard_normal(t.shape)).astype(np.float32)
    convs = [layer.name for layer in ear.layers if layer.kind == "conv"] or [ear.layers[0].name]
    values["layer"] = convs[len(convs) // 2]  # a middle layer: conv1 would flatter, the top is rarely chosen
    values["channel"] = 0
    target = target_from(ear, values)
    dream_with(ear, audio[: max(ear.sample_rate // 4, shortest)], target, values, steps=1)  # warm up
    # Steps at the ear's own frames a step (8 steps would otherwise take more, to read every frame).
    r = dream_with(ear, audio, target, values, steps=8, measure=False, visits=Sonifier.VISITS)
    steps_per_second = 8 / r.seconds
    window = audio[: max(int(float(values["window"]) * ear.sample_rate), shortest)]
    chunk = float(values["chunk"])
    started = time.perf_counter()
    for i in range(4):  # as a live update: the gain is measured on one update in eight only
        dream_with(ear, window, target, values, steps=int(values["steps"]), seed=i, measure=False, visits=Sonifier.VISITS)
    live_dream = (time.perf_counter() - started) / 4 / chunk
    # As a live update: only what is played (chunk, fade, margins) plus one ear window is deconvolved.
    played = chunk + float(values["fade"]) + 2 * Sonifier.MARGIN + min(1024, ear.window) / ear.sample_rate
    segment = audio[: int(played * ear.sample_rate) + ear.window]
    auralise_with(ear, segment, target, values)
    started = time.perf_counter()
    for _ in range(2):
        auralise_with(ear, segment, target, values)
    live_auralise = (time.perf_counter() - started) / 2 / chunk
    return {
        "layer": target.layer,
        "dream_steps_per_second": steps_per_second,
        "live_dream_rtf": live_dream,
        "live_auralise_rtf": live_auralise,
        "window_s": window.shape[0] / ear.sample_rate,
        "chunk_s": chunk,
        "frames_per_step": float(int(values["frames"]) or auto_frames(ear)),
    }
