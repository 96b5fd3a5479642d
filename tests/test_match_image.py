"""The image side: EfficientNet-Lite0 on scikit-image's photographs (known answers), and pictures
that cannot be read. Then the whole match on those photographs, with the default library."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from earsight.errors import BadRequest, NotFound
from earsight.match import beds, classes, image, library


def _top(pixels: np.ndarray) -> tuple[str, float]:
    p = image.classify(pixels)
    assert p.shape == (1000,) and p.sum() == pytest.approx(1.0) and p.min() >= 0
    i = int(p.argmax())
    return classes.names()[i], float(p[i])


def test_known_photographs_are_recognised(torch_threads: int) -> None:
    name, p = _top(data.coffee())
    assert name.startswith("espresso") and p > 0.5
    name, p = _top(data.chelsea())
    assert classes.names().index(name) in range(281, 286), name  # the domestic cats
    name, _ = _top(data.stereo_motorcycle()[0])
    assert name.split(",")[0] in ("moped", "motor scooter")


def test_class_names_come_in_the_networks_order() -> None:
    n = classes.names()
    assert len(n) == 1000 and n[0].startswith("tench") and n[978].startswith("seashore")
    assert classes.index_of("espresso") == 967 and classes.short(967) == "espresso"


def test_pictures_that_cannot_be_read_say_why(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        image.load(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("not a picture")
    with pytest.raises(BadRequest, match="cannot read text.png as an image"):
        image.load(tmp_path / "text.png")
    Image.new("1", (8000, 7000)).save(tmp_path / "huge.png")  # 56 M pixels, a small file
    with pytest.raises(BadRequest, match="more than"):
        image.load(tmp_path / "huge.png")
    with pytest.raises(BadRequest):
        image.classify(np.zeros((10, 10), np.uint8))


def test_grey_and_transparent_pictures_are_read_as_rgb(tmp_path: Path) -> None:
    Image.fromarray(data.camera()).save(tmp_path / "grey.png")
    Image.fromarray(data.coffee()).convert("RGBA").save(tmp_path / "rgba.png")
    for f in ("grey.png", "rgba.png"):
        px = image.load(tmp_path / f)
        assert px.ndim == 3 and px.shape[2] == 3 and px.dtype == np.uint8


@pytest.fixture(scope="module")
def matcher() -> beds.Matcher:
    return beds.Matcher(library.load(library.default_folder()))


def _side_by_side(*pictures: np.ndarray, height: int = 400) -> np.ndarray:
    parts = [np.asarray(Image.fromarray(p).resize((600, height))) for p in pictures]
    return np.concatenate(parts, axis=1)


def test_photographs_pick_the_sound_of_their_scene(matcher: beds.Matcher) -> None:
    coffee = matcher.match(image.classify(data.coffee()))
    assert coffee.beds[0].sounds == ("cafe",) and coffee.coverage > 0.5
    moto = matcher.match(image.classify(data.stereo_motorcycle()[0]))
    assert moto.beds[0].sounds == ("traffic",)


def test_a_picture_of_two_scenes_picks_their_superimposition(matcher: beds.Matcher) -> None:
    both = matcher.match(image.classify(_side_by_side(data.coffee(), data.stereo_motorcycle()[0])))
    assert set(both.beds[0].sounds) == {"cafe", "traffic"}, both.beds[0]


def test_the_cli_lists_beds_and_writes_the_best(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import soundfile as sf

    from earsight.cli import main

    Image.fromarray(data.coffee()).save(tmp_path / "coffee.png")
    out = tmp_path / "bed.wav"
    assert main(["match", str(tmp_path / "coffee.png"), "--out", str(out), "--seconds", "2", "--classes"]) == 0
    printed = capsys.readouterr().out
    assert "1. cafe 1.00" in printed and "espresso" in printed
    audio, sr = sf.read(out)
    assert audio.shape == (2 * sr, 2) and 0 < np.abs(audio).max() <= 1.0
    (tmp_path / "bad.png").write_text("no")
    assert main(["match", str(tmp_path / "bad.png")]) == 2
