"""The bench's own code paths run and give figures (never timed: no assertion on speed)."""

import shutil

import pytest

from earsight.audio import jack
from earsight.bench.ears import bench_ear
from earsight.bench.osc import bench_osc


def test_ear_figures() -> None:
    figures = bench_ear("crepe", seconds=1.0)
    assert set(figures) == {
        "offline RTF (x real time)", "streaming RTF (x real time)", "streaming cost / offline cost",
        "torchcrepe's own network, offline RTF (x real time)", "our analyse / torchcrepe (speed-up)",
    }
    assert all(v > 0 for v in figures.values())
    assert set(bench_ear("cpc", seconds=1.0)) == {  # torchcrepe is CREPE's baseline only
        "offline RTF (x real time)", "streaming RTF (x real time)", "streaming cost / offline cost",
    }


def test_osc_figures_against_the_baseline_with_a_served_server() -> None:
    figures = bench_osc(rates=(500,), flood_rates=(2000,), seconds=0.5)
    assert figures["bare python-osc echo: answered at 500/s (baseline)"] > 0.9
    assert figures["earsight: answered at 500/s"] > 0.9  # 500/s is far below what either does
    assert figures["earsight: unanswered at 500/s"] == round(250 * (1 - figures["earsight: answered at 500/s"]))
    # a fader flood: every message read, and applied or coalesced (nothing lost, whatever the speed)
    assert figures["fader flood 2000/s: read by the server"] == figures["fader flood 2000/s: sent"] == 1000
    assert figures["fader flood 2000/s: lost (sent - applied - coalesced)"] == 0
    assert figures["fader flood 2000/s: marker answered"] == 1


@pytest.mark.skipif(shutil.which("jackd") is None, reason="needs jackd (Debian jackd2)")
def test_latency_figures_per_stream_and_floor() -> None:
    from earsight.bench.latency import bench_latency

    assert not jack.running(), "a JACK server is already running"
    figures = bench_latency(clicks=6, interval=0.25)
    for label in ("floor: pyo's C-side OSC sender", "floor: pyo's Python callback", "earsight level (clicks)",
                  "earsight onset (clicks)"):
        detected, sent = (int(v) for v in str(figures[f"{label}: detected"]).split(" / "))
        assert sent == 6 and detected >= 5, (label, figures)
        assert 0 < figures[f"{label}: p50 (ms)"] < 250
    assert "earsight pitch, crepe (tone bursts): detected" in figures
    assert not jack.running(), "the bench stops the JACK server it started"
