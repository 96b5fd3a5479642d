"""The match: known answers on class distributions, sidecars, and the default library's table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from earsight.errors import BadRequest, NotFound
from earsight.match import beds, classes, library, synth


def _library(folder: Path, sidecars: dict[str, str]) -> library.Library:
    for name, text in sidecars.items():
        sf.write(folder / f"{name}.wav", np.zeros((4800, 1), np.float32), 48000)
        (folder / f"{name}.txt").write_text(text)
    return library.load(folder)


@pytest.fixture
def lib(tmp_path: Path) -> library.Library:
    return _library(tmp_path, {
        "sea": "seashore\nsandbar\npromontory\n",
        "city": "cab\nstreetcar\ntraffic light\n",
        "cafe": "espresso\ncup\nrestaurant\n",
        "forest": "#7-24\nvalley\n",
    })


def _delta(*names: str) -> np.ndarray:
    p = np.zeros(1000)
    for n in names:
        p[classes.index_of(n)] = 1.0 / len(names)
    return p


def test_one_class_picks_the_sound_that_evokes_it(lib: library.Library) -> None:
    m = beds.Matcher(lib)
    for cls, sound in (("seashore", "sea"), ("cab", "city"), ("espresso", "cafe"), ("valley", "forest")):
        result = m.match(_delta(cls))
        assert result.beds[0].sounds == (sound,), (cls, result.beds[0])
        assert result.coverage == pytest.approx(1.0)
        # the next best is a different, worse bed
        assert result.beds[1].divergence > result.beds[0].divergence + 1.0


def test_a_mixture_picks_the_matching_superimposition(lib: library.Library) -> None:
    m = beds.Matcher(lib)
    p = 0.7 * _delta("seashore") + 0.3 * _delta("cab")
    best = m.match(p).beds[0]
    assert set(best.sounds) == {"sea", "city"}
    weights = dict(zip(best.sounds, best.weights, strict=True))
    assert weights["sea"] == pytest.approx(0.7, abs=0.03) and weights["city"] == pytest.approx(0.3, abs=0.03)
    three = m.match(0.4 * _delta("seashore") + 0.3 * _delta("cab") + 0.3 * _delta("cup")).beds[0]
    assert set(three.sounds) == {"sea", "city", "cafe"}


def test_em_weights_are_the_best_weights(lib: library.Library) -> None:
    """EM's weights reach the least divergence a bounded scalar search finds, within a milli-nat
    (EM closes in on a weight of 0 slowly; the smaller bed is a candidate of its own anyway)."""
    from scipy.optimize import minimize_scalar

    m = beds.Matcher(lib)
    rng = np.random.default_rng(1)
    for _ in range(5):
        p = rng.dirichlet(np.ones(1000) * 0.05)
        pe = p[m.idx] / p[m.idx].sum()
        w, kl = beds._fit(pe, m.q[[0, 1]][None])

        def kl_at(a: float, pe: np.ndarray = pe) -> float:
            mix = a * m.q[0] + (1 - a) * m.q[1]
            return float((pe * np.log(pe / mix)).sum())

        best = minimize_scalar(kl_at, bounds=(0.0, 1.0), method="bounded", options={"xatol": 1e-10})
        assert kl[0] <= best.fun + 1e-3
        assert w.sum() == pytest.approx(1.0)


def test_parsimony_prefers_fewer_sounds_when_they_describe_as_well(lib: library.Library) -> None:
    m = beds.Matcher(lib)
    # almost all on seashore, a trace on cab: the sea alone, not sea + a whisper of city
    best = m.match(0.995 * _delta("seashore") + 0.005 * _delta("cab")).beds[0]
    assert best.sounds == ("sea",)


def test_coverage_counts_what_the_library_cannot_express(lib: library.Library) -> None:
    p = 0.25 * _delta("seashore") + 0.75 * _delta("tabby")
    result = beds.Matcher(lib).match(p)
    assert result.coverage == pytest.approx(0.25)
    assert result.beds[0].sounds == ("sea",)
    assert result.top[0] == ("tabby", pytest.approx(0.75))


def test_bad_probabilities_are_refused(lib: library.Library) -> None:
    m = beds.Matcher(lib)
    for bad in (np.zeros(10), np.full(1000, np.nan), -_delta("cab")):
        with pytest.raises(BadRequest):
            m.match(bad)


def test_sidecar_entries_name_classes() -> None:
    assert library.parse_entry("seashore") == [classes.index_of("seashore")]
    assert library.parse_entry("Sea-Coast") == [978]
    assert library.parse_entry("#7-9") == [7, 8, 9]
    assert library.parse_entry("#978") == [978]
    # whole words, the plural's s dropped: "tree frog" and "tailed frog", not "bullfrog"
    assert set(library.parse_entry("frogs")) == {31, 32}
    assert library.parse_entry("#999-1005") == []
    assert library.parse_entry("no such thing at all") == []


def test_sidecar_weights_and_errors_cite_file_and_line(tmp_path: Path) -> None:
    side = tmp_path / "x.txt"
    side.write_text("// a comment\nseashore 3\n\ncab\n")
    w = library.parse_sidecar(side)
    assert w == {classes.index_of("cab"): pytest.approx(0.25), classes.index_of("seashore"): pytest.approx(0.75)}
    side.write_text("seashore\nunicorns galloping\n")
    with pytest.raises(BadRequest, match=r"x.txt:2: 'unicorns galloping' names no ImageNet class"):
        library.parse_sidecar(side)
    side.write_text("seashore -1\n")
    with pytest.raises(BadRequest, match="positive"):
        library.parse_sidecar(side)


def test_libraries_that_cannot_be_used_say_why(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        library.load(tmp_path / "missing")
    with pytest.raises(BadRequest, match="no sounds with a sidecar"):
        library.load(tmp_path)
    sf.write(tmp_path / "lonely.wav", np.zeros((100, 1), np.float32), 48000)
    with pytest.raises(BadRequest, match="1 without one: lonely.wav"):
        library.load(tmp_path)


def test_every_entry_of_the_default_table_names_classes() -> None:
    for name, (_, entries) in synth.SOUNDS.items():
        for entry in entries:
            assert library.parse_entry(entry), (name, entry)


def test_the_default_table_answers_its_own_classes() -> None:
    """A class that only one default sound evokes picks that sound: the table has no dead sound."""
    lib = library.load(library.default_folder())
    assert set(lib.names) == set(synth.SOUNDS)
    m = beds.Matcher(lib)
    owners: dict[int, list[str]] = {}
    for s in lib.sounds:
        for c in s.classes:
            owners.setdefault(c, []).append(s.name)
    for sound in lib.sounds:
        own = [c for c in sound.classes if owners[c] == [sound.name]]
        assert own, f"{sound.name} evokes no class of its own"
        p = np.zeros(1000)
        p[own] = 1.0
        assert m.match(p).beds[0].sounds == (sound.name,)
