"""The bench's own code paths run and give figures (never timed: no assertion on speed)."""

from earsight.bench.ears import bench_ear
from earsight.bench.osc import bench_osc


def test_ear_figures() -> None:
    figures = bench_ear("crepe", seconds=1.0)
    assert set(figures) == {"offline RTF (x real time)", "streaming RTF (x real time)", "streaming cost / offline cost"}
    assert all(v > 0 for v in figures.values())


def test_osc_figures_against_the_baseline_with_a_served_server() -> None:
    figures = bench_osc(rates=(500,), seconds=0.5)
    assert figures["bare python-osc echo: answered at 500/s (baseline)"] > 0.9
    assert figures["earsight: answered at 500/s"] > 0.9  # 500/s is far below what either does
