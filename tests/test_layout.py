"""Neural layout: the graph of an ear, the force-directed placement, the per-ear cache."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

from earsight import layout as L
from earsight.ears import registry
from earsight.ears.base import Ear


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EARSIGHT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def musicnn_layout(musicnn: Ear, module_cache: Path) -> L.Layout:
    """A layout computed here, from scratch (seed 1: not the shipped one), into an empty cache."""
    assert not (module_cache / "layouts").exists()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EARSIGHT_CACHE", str(module_cache))
        return L.get_layout(musicnn, progress=False, seed=1)


def test_graph_has_every_neuron_and_local_conv_edges(crepe: Ear) -> None:
    layer, unit, edges = L.build_graph(crepe.layers)
    sizes = [spec.size for spec in crepe.layers]
    assert layer.shape[0] == sum(sizes) == unit.shape[0]
    assert np.array_equal(np.bincount(layer), sizes)
    assert np.all(edges[:, 0] < edges[:, 1])
    assert np.unique(edges[:, 0].astype(np.int64) * layer.shape[0] + edges[:, 1]).shape[0] == edges.shape[0]
    degree = np.bincount(edges.ravel(), minlength=layer.shape[0])
    assert degree.min() >= 1, "a neuron without edges would float away"
    # conv2 (16, 64) -> conv3 (16, 32): linked positions keep their place along frequency.
    k2, k3 = crepe.layer_names.index("conv2"), crepe.layer_names.index("conv3")
    a, b = layer[edges[:, 0]], layer[edges[:, 1]]
    between = edges[(a == k2) & (b == k3)]
    assert between.shape[0] > 0
    p2 = unit[between[:, 0]] % 64 / 64
    p3 = unit[between[:, 1]] % 32 / 32
    assert np.abs(p2 - p3).max() <= 3 / 64
    # pitch (dense) links reach all over conv6's positions.
    k6, kp = crepe.layer_names.index("conv6"), crepe.layer_names.index("pitch")
    dense = edges[(a == k6) & (b == kp)]
    assert len(np.unique(unit[dense[:, 0]] % 4)) == 4


def test_charges_follow_activation_variance() -> None:
    variance = np.array([0.0, 1.0, 4.0, 9.0, 2.0, 2.0], np.float32)
    layer = np.array([0, 0, 0, 0, 1, 1])
    q = L.charges_from_variance(variance, layer)
    assert np.all(np.diff(q[:4]) > 0)
    assert q[4] == q[5]
    assert q.min() >= 0.3 and q.max() <= 3.0


def test_connected_neurons_end_closer_than_unconnected(musicnn_layout: L.Layout) -> None:
    lay = musicnn_layout
    assert lay.positions.dtype == np.float32
    assert np.abs(lay.positions).max() <= 1.0 + 1e-6
    assert np.isfinite(lay.positions).all()
    connected = L.mean_edge_length(lay.positions, lay.edges)
    random_pairs = L.mean_random_pair_length(lay.positions)
    assert connected < 0.7 * random_pairs


def test_crepe_layout_is_tidy(crepe: Ear) -> None:
    # The user's cache (or the shipped copy): built once per machine, ~30 s for CREPE tiny.
    lay = L.get_layout(crepe, progress=False)
    assert lay.key == L.layout_key(crepe)
    assert lay.n == sum(spec.size for spec in crepe.layers)
    assert tuple(lay.layer_names) == tuple(crepe.layer_names)
    # A conv net's local wiring lays out far tighter than a random graph.
    assert L.mean_edge_length(lay.positions, lay.edges) < 0.3 * L.mean_random_pair_length(lay.positions)


@pytest.mark.parametrize("name", ["crepe", "musicnn", "cpc"])
def test_the_shipped_layouts_match_their_ears_and_are_used(name: str, fresh_cache: Path) -> None:
    ear = registry.load(name)
    assert L.shipped_path(ear).is_file(), f"no shipped layout for {name}: earsight layout {name} --ship"
    lay = L.get_layout(ear, progress=False)
    assert lay.key == L.layout_key(ear), "the shipped layout is stale: earsight layout NAME --ship --rebuild"
    assert not (fresh_cache / "layouts").exists(), "the shipped copy should have been enough"


def test_layout_is_deterministic_with_a_seed(musicnn: Ear) -> None:
    layer, _, edges = L.build_graph(musicnn.layers, seed=2)
    n = layer.shape[0]
    a = L.layout_graph(n, edges, seed=5)
    b = L.layout_graph(n, edges, seed=5)
    c = L.layout_graph(n, edges, seed=6)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_cache_hit_on_second_call_and_rebuilt_when_the_ear_changes(
    musicnn: Ear, musicnn_layout: L.Layout, module_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EARSIGHT_CACHE", str(module_cache))
    first = musicnn_layout
    path = L.cache_path(musicnn, first.key)
    assert path.is_file()
    # Mark the cached file: a second call that returns the mark read the cache.
    marked = L.Layout(**{**first.__dict__, "positions": np.zeros_like(first.positions)})
    marked.save(path)
    try:
        second = L.get_layout(musicnn, progress=False, seed=1)
        assert np.array_equal(second.positions, marked.positions)
    finally:
        first.save(path)
    # A different layer table (another ear) is another key, so another layout.
    changed = registry.load("musicnn")
    changed.layers = changed.layers[:-1]
    assert L.layout_key(changed, seed=1) != first.key


def test_cli_writes_a_picture(
    musicnn_layout: L.Layout, module_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # musicnn_layout filled the module's cache: the command finds it there.
    monkeypatch.setenv("EARSIGHT_CACHE", str(module_cache))
    parser = argparse.ArgumentParser()
    L.add_arguments(parser)
    png = tmp_path / "layout.png"
    assert L.run(parser.parse_args(["musicnn", "--png", str(png), "--seed", "1"])) == 0
    from PIL import Image

    image = np.asarray(Image.open(png).convert("RGB"))
    assert (image.max(axis=2) > 60).sum() > 500, "the picture should show the neurons"
