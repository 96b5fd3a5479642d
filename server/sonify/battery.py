"""``earsight bench --only dream``: dreams of a sample of units from every conv layer of an ear,
on a battery of inputs (:data:`~.signals.BATTERY`), each judged (:mod:`.judge`) with the
defaults, and two units per layer compared for distinctness.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from tqdm import tqdm

from ..ears.base import Ear
from .dream import dream_with
from .judge import DISTINCT, correlation, judge, layer_spreads
from .params import defaults
from .signals import BATTERY
from .target import Target


def sample_units(ear: Ear, per_layer: int, seed: int = 0) -> list[Target]:
    """``per_layer`` live units (a spread on reference audio) of every conv layer, drawn at random.

    musicnn's mid-end (cnn1-3) are convolutions over time too, summarised per channel over the
    window (so declared dense, for the layout): a layer of channels counts."""
    rng = np.random.default_rng(seed)
    units = []
    for layer in ear.layers:
        if layer.kind != "conv" and layer.unit != "channel":
            continue
        live = np.flatnonzero(layer_spreads(ear, layer.name) > 1e-6)
        for c in sorted(rng.choice(live, min(per_layer, live.size), replace=False)):
            units.append(Target(layer.name, (int(c),)))
    return units


def battery_seconds(ear: Ear) -> float:
    """Input length: a second, or two hops past one window for an ear that hears 3 s at once."""
    return max(1.0, (ear.window + 2 * ear.hop) / ear.sample_rate)


def bench_dream(ear: Ear, *, per_layer: int = 2, inputs: tuple[str, ...] | None = None, steps: int | None = None) -> list[dict[str, Any]]:
    """One row per unit x input: rise (spreads), noise's rise, loudness dB, jump ratio, the layer's
    median rise, the dream's seconds; and per layer and input, the correlation of the first two
    units' changes' log-spectra (``distinct``)."""
    values = defaults()
    steps = int(values["iterations"]) if steps is None else steps
    seconds = battery_seconds(ear)
    signals = {name: BATTERY[name](seconds, ear.sample_rate) for name in (inputs or tuple(BATTERY))}
    units = sample_units(ear, per_layer)
    rows: list[dict[str, Any]] = []
    changes: dict[tuple[str, str], list[np.ndarray]] = {}
    for target in tqdm(units, desc=f"dream {ear.name}", unit="unit"):
        for name, x in signals.items():
            started = time.perf_counter()
            result = dream_with(ear, x, target, values, steps=steps, measure=False)
            took = time.perf_counter() - started
            v = judge(ear, x, result.audio, target)
            changes.setdefault((target.layer, name), []).append(result.delta)
            rows.append({
                "unit": f"{target.layer}:{target.channels[0]}", "input": name, "rise": v.rise, "noise": v.noise,
                "vs_noise": v.rise / v.noise if v.noise > 0 else float("inf"), "loudness_db": v.loudness,
                "jump": v.jump, "median": v.median, "moved": v.moved, "clean": v.clean, "selective": v.selective,
                "seconds": took,
            })
    for (layer, name), found in changes.items():
        if len(found) >= 2:
            r, raw = correlation(found[0], found[1]), correlation(found[0], found[1], detrend=False)
            for row in rows:
                if row["unit"].startswith(f"{layer}:") and row["input"] == name:
                    row["distinct"], row["raw_corr"] = r, raw
    return rows


def show_table(ear: str, rows: list[dict[str, Any]]) -> None:
    """The battery table, and how many rows meet each criterion."""
    print(f"\n== dream {ear}: rise in spreads; vs noise of the same energy; loudness; largest jump / input's; "
          f"layer median; log-spectrum correlation with the layer's other unit, detrended (distinct below {DISTINCT}) and raw")
    print(f"{'unit':<14}{'input':<9}{'rise':>7}{'noise':>7}{'x noise':>9}{'dB':>7}{'jump':>6}{'median':>8}{'corr':>6}{'raw':>6}{'s':>6}  ok")
    for r in rows:
        ok = "".join(c if r[k] else "-" for c, k in (("m", "moved"), ("c", "clean"), ("s", "selective")))
        print(f"{r['unit']:<14}{r['input']:<9}{r['rise']:>+7.2f}{r['noise']:>+7.2f}{r['vs_noise']:>9.1f}"
              f"{r['loudness_db']:>+7.2f}{r['jump']:>6.2f}{r['median']:>+8.2f}{r.get('distinct', float('nan')):>6.2f}{r.get('raw_corr', float('nan')):>6.2f}"
              f"{r['seconds']:>6.1f}  {ok}")
    n = len(rows)
    distinct = [r["distinct"] for r in rows if "distinct" in r]
    print(f"moved (>= 2 spreads, >= 3x noise) {sum(r['moved'] for r in rows)}/{n}; clean (+-3 dB, jump <= 1) "
          f"{sum(r['clean'] for r in rows)}/{n}; selective (>= 2x layer median) {sum(r['selective'] for r in rows)}/{n}; "
          f"distinct pairs {sum(d < DISTINCT for d in distinct) // 2}/{len(distinct) // 2}")


def bench_dreams(ears: list[str]) -> dict[str, list[dict[str, Any]]]:
    """``earsight bench --only dream``: the battery table for every ear that loads."""
    from ..ears import registry

    results: dict[str, list[dict[str, Any]]] = {}
    for name in ears:
        try:
            ear = registry.load(name)
        except Exception as exc:  # an ear that cannot load here is reported, not fatal to the bench
            print(f"\n== dream {name}: cannot load ({type(exc).__name__}: {exc})")
            continue
        rows = bench_dream(ear, per_layer=2)
        show_table(f"{name} ({defaults()['iterations']} steps)", rows)
        results[name] = rows
    return results
