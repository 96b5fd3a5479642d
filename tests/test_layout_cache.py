"""layout.cache: layouts kept per ear and seed, keyed by the fingerprint the ear declares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from earsight import layout as L
from earsight.ears import registry
from earsight.ears.base import Ear, Layer, WindowedEar


class Energy(WindowedEar):
    """A weightless ear: band energies of 4 x 8 slices of the window, and three sums of them."""

    name = "energy"
    hop = 64
    window = 256
    layers = (Layer("band", (4, 8)), Layer("out", (3,), kind="dense"))

    def frames(self, windows: torch.Tensor) -> dict[str, torch.Tensor]:
        band = windows.reshape(windows.shape[0], 4, 8, -1).pow(2).mean(-1)
        return {"band": band, "out": band.mean(-1)[:, :3]}


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
    # Connected neurons end up closer than random pairs. Not by as much as in a net of small
    # kernels: CREPE's kernels of 64 make conv3 onwards read every position of the layer before.
    assert L.mean_edge_length(lay.positions, lay.edges) < 0.6 * L.mean_random_pair_length(lay.positions)


@pytest.mark.parametrize("name", ["crepe", "musicnn", "cpc"])
def test_the_shipped_layouts_match_their_ears_and_are_used(name: str, fresh_cache: Path) -> None:
    ear = registry.load(name)
    assert L.shipped_path(ear).is_file(), f"no shipped layout for {name}: earsight layout {name} --ship"
    lay = L.get_layout(ear, progress=False)
    assert lay.key == L.layout_key(ear), "the shipped layout is stale: earsight layout NAME --ship --rebuild"
    assert not (fresh_cache / "layouts").exists(), "the shipped copy should have been enough"


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


def test_the_fingerprint_follows_the_weights() -> None:
    ear = registry.load("cpc")
    before = ear.fingerprint()
    assert len(before) == 64 and int(before, 16) >= 0
    assert registry.load("cpc").fingerprint() == before, "the same ear loaded twice is the same ear"
    key = L.layout_key(ear)
    weight = next(ear.net.parameters())
    with torch.no_grad():
        weight[0] += 1e-3
        try:
            assert ear.fingerprint() != before, "trained in place: another ear"
            assert L.layout_key(ear) != key
        finally:
            weight[0] -= 1e-3


def test_a_weightless_ear_is_fingerprinted_by_its_structure_and_laid_out(fresh_cache: Path) -> None:
    ear = Energy()
    assert Energy().fingerprint() == ear.fingerprint()
    slower = Energy()
    slower.hop = 128
    assert slower.fingerprint() != ear.fingerprint()
    lay = L.get_layout(ear, progress=False)
    assert lay.n == 35 and lay.key == L.layout_key(ear)
    assert L.cache_path(ear, lay.key).is_file()
    assert np.all(lay.layer_range[:, 1] > lay.layer_range[:, 0])


def test_the_key_uses_what_the_ear_declares() -> None:
    class Renamed(Energy):
        def fingerprint(self) -> str:
            return "weights v2"

    assert L.layout_key(Renamed()) != L.layout_key(Energy())
    assert L.layout_key(Energy(), seed=1) != L.layout_key(Energy())
