"""layout.cli: ``earsight layout EAR`` draws the layout; the benchmark measures it."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from earsight import layout as L
from earsight.ears.base import Ear


def test_cli_writes_a_picture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An empty cache: the command finds musicnn's shipped layout and builds nothing.
    monkeypatch.setenv("EARSIGHT_CACHE", str(tmp_path / "cache"))
    parser = argparse.ArgumentParser()
    L.add_arguments(parser)
    png = tmp_path / "layout.png"
    assert L.run(parser.parse_args(["musicnn", "--png", str(png)])) == 0
    assert not (tmp_path / "cache" / "layouts").exists()
    from PIL import Image

    image = np.asarray(Image.open(png).convert("RGB"))
    assert (image.max(axis=2) > 60).sum() > 500, "the picture should show the neurons"


def test_bench_compares_with_networkx(musicnn: Ear) -> None:
    pytest.importorskip("networkx")
    n = sum(layer.size for layer in musicnn.layers)
    figures = L.bench_layout(musicnn, max_pairs=2 * n * n)  # networkx: time two of its 50 iterations
    assert figures["nodes"] == n and figures["edges"] > n
    assert figures["networkx_iterations_timed"] == 2 and "networkx_edge_ratio" not in figures
    assert 0 < figures["ours_edge_ratio"] < 0.7
    assert figures["ours_distinct_pixels"] == 1.0
    assert figures["ours_s"] > 0 and figures["speedup"] > 0
    assert "unconverged" in str(figures["networkx"])


def test_bench_skips_networkx_beyond_its_edge_cap() -> None:
    from earsight.ears.base import Layer

    layers = [Layer("a", (4, 16)), Layer("b", (8, 16)), Layer("c", (10,), kind="dense")]
    figures = L.bench_graph(layers, max_edges=100)
    assert figures["nodes"] == 4 * 16 + 8 * 16 + 10
    assert figures["edges"] == L.connectivity(layers).m > figures["nodes"]
    assert "skipped" in str(figures["networkx"]) and "networkx_s" not in figures
