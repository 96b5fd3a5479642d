"""The figures the stages measure themselves (layout, render, sonify)."""

from __future__ import annotations

import importlib
from typing import Any

from ..ears import registry
from .common import show

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
            show(f"{title}: {name}", figures)
    return results
