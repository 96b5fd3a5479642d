"""The bed through pyo: crossfades without a click or a dip, its own level, the ear's input only when
asked; and /ear/match over OSC on a running server, with its failures."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import OscClient, make_server, wait_until
from PIL import Image
from skimage import data

from earsight.audio import AudioEngine, Source
from earsight.errors import BadRequest
from earsight.match import bedaudio, beds, library

SR = 48000


def record(engine: AudioEngine, seconds: float) -> np.ndarray:
    """The next ``seconds`` of what the server plays (read often: the monitor ring holds 4 s)."""
    got: list[np.ndarray] = []
    want = int(seconds * SR)
    deadline = time.monotonic() + 10 * seconds + 10
    while sum(g.shape[0] for g in got) < want and time.monotonic() < deadline:
        time.sleep(0.1)
        got.append(engine.monitor.read())
    out = np.concatenate(got)
    assert out.shape[0] >= want, "the audio process stopped playing"
    return out[:want]


@pytest.fixture(scope="module")
def two_beds() -> tuple[np.ndarray, np.ndarray]:
    lib = library.load(library.default_folder())
    a = bedaudio.mix(beds.Bed(("cafe",), (1.0,), 0.0), lib, SR)
    b = bedaudio.mix(beds.Bed(("waves", "birds"), (0.6, 0.4), 0.0), lib, SR)
    return a, b


def _rms_db(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x.astype(np.float64) ** 2) + 1e-30))


def test_a_crossfade_has_no_click(audio: AudioEngine, two_beds: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = two_beds
    audio.set_bed(a, 0.2)
    record(audio, 0.5)
    fade = 1.0
    audio.monitor.read()
    audio.set_bed(b, fade)
    played = record(audio, 2.5).astype(np.float64)
    audio.set_bed(None, 0.1)
    # Equal power: sqrt(g) + sqrt(1 - g) <= sqrt(2), so no step during the fade can be more than
    # sqrt(2) times the larger of the two beds' own largest steps (plus the gain ramp's own step).
    own = max(np.abs(np.diff(a, axis=0)).max(), np.abs(np.diff(b, axis=0)).max())
    ramp_step = np.sqrt(1.0 / (fade * SR)) * max(np.abs(a).max(), np.abs(b).max())
    largest = np.abs(np.diff(played, axis=0)).max()
    assert largest <= np.sqrt(2) * own + ramp_step, f"a click: {largest:.4f} against the beds' {own:.4f}"


def test_a_crossfade_keeps_the_power(audio: AudioEngine) -> None:
    """Two steady noises at the same level: an equal-power fade holds it (a linear one dips 3 dB)."""
    a, b = _noise_bed(0), _noise_bed(1)
    audio.set_bed(a, 0.05)
    record(audio, 0.3)
    audio.monitor.read()
    audio.set_bed(b, 1.0)
    played = record(audio, 1.5)
    audio.set_bed(None, 0.05)
    win = SR // 20
    levels = [_rms_db(played[i : i + win]) for i in range(0, played.shape[0] - win, win)]
    assert max(abs(v - bedaudio.LEVEL_DB) for v in levels) < 1.0, levels


def test_changes_faster_than_a_fade_stay_smooth(audio: AudioEngine, two_beds: tuple[np.ndarray, np.ndarray]) -> None:
    """New beds in the middle of crossfades: every slot ramps from where it is, and a change that
    would need a slot still heard waits for one to fall silent, so no bed is loaded under the ear."""
    from earsight.audio.graph import BED_SLOTS

    a, b = two_beds
    audio.set_bed(None, 0.01)
    time.sleep(0.1)
    audio.monitor.read()
    got: list[np.ndarray] = []
    t0 = time.monotonic()
    for bed in (a, b, a, b, a, b):
        audio.set_bed(bed, 1.0)
        got.append(audio.monitor.read())
    waited = time.monotonic() - t0
    got.append(record(audio, 1.5))
    audio.set_bed(None, 0.1)
    played = np.concatenate(got).astype(np.float64)
    # the fourth change found every slot sounding or fading: it waited for the first change's fade
    assert waited >= 1.0 - 0.05
    own = max(np.abs(np.diff(a, axis=0)).max(), np.abs(np.diff(b, axis=0)).max())
    # at most BED_SLOTS beds sound at once, each at an amplitude of at most 1, each step at most own
    ramp_step = np.sqrt(1.0 / SR) * max(np.abs(a).max(), np.abs(b).max())
    assert np.abs(np.diff(played, axis=0)).max() <= BED_SLOTS * (own + ramp_step)


def _noise_bed(seed: int) -> np.ndarray:
    """A steady bed at the level: its RMS over any 50 ms is the level, within a fraction of a dB."""
    rng = np.random.default_rng(seed)
    frames = int(bedaudio.BED_SECONDS * SR)
    return (rng.standard_normal((frames, 2)) * 10 ** (bedaudio.LEVEL_DB / 20)).astype(np.float32)


def test_level_and_the_ears_input(audio: AudioEngine) -> None:
    a = _noise_bed(2)
    audio.set_bed(a, 0.05)
    try:
        record(audio, 0.3)
        assert _rms_db(record(audio, 1.0)) == pytest.approx(bedaudio.LEVEL_DB, abs=0.5)
        audio.input.read()
        time.sleep(0.5)
        assert np.abs(audio.input.read()).max() == 0.0, "the ear heard the bed without being asked"
        audio.set_bed_level(0.5, into_input=False)
        record(audio, 0.3)
        assert _rms_db(record(audio, 1.0)) == pytest.approx(bedaudio.LEVEL_DB - 6.02, abs=0.5)
        audio.set_bed_level(1.0, into_input=True)
        record(audio, 0.3)
        audio.input.read()
        time.sleep(0.5)
        heard = audio.input.read()
        assert heard.shape[0] > 0 and _rms_db(heard) > bedaudio.LEVEL_DB - 10.0, "the ear does not hear the bed"
        assert _rms_db(record(audio, 1.0)) == pytest.approx(bedaudio.LEVEL_DB, abs=0.5), "played twice?"
        with pytest.raises(BadRequest):
            audio.set_bed_level(5.0, False)
        with pytest.raises(BadRequest):
            audio.set_bed(a, -1.0)
        with pytest.raises(BadRequest, match="a bed is 20 s of stereo"):
            audio.set_bed(a[:1000], 1.0)
    finally:
        audio.set_bed_level(1.0, into_input=False)
        audio.set_bed(None, 0.05)
    record(audio, 0.3)
    assert np.abs(record(audio, 0.5)).max() == 0.0, "the bed did not fade out"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[object, OscClient, Path]]:
    app = make_server(Source("silence"), out_dir=tmp_path)
    client = OscClient(app.osc.address)
    try:
        yield app, client, tmp_path
    finally:
        client.close()
        app.stop()


def test_match_over_osc_answers_and_plays(server: tuple[object, OscClient, Path]) -> None:
    app, c, tmp = server
    Image.fromarray(data.coffee()).save(tmp / "coffee.jpg")
    # (quantised to the bar: without Link there is none to wait for, and it plays at once)
    reply = c.request("/ear/match", str(tmp / "coffee.jpg"), "bar", reply="/ear/match.reply", timeout=120)
    rank, divergence, coverage, sound, weight = reply
    assert (rank, sound) == (1, "cafe") and weight == pytest.approx(1.0) and divergence > 0 and coverage > 0.5
    engine = app.audio  # type: ignore[attr-defined]
    assert wait_until(lambda: _rms_db(record(engine, 0.2)) > bedaudio.LEVEL_DB - 1.5, timeout=20)
    status = c.request("/ear/match/status", reply="/ear/match/status.reply")
    values = dict(zip(status[::2], status[1::2], strict=True))
    assert values["bed"] == "cafe 1.00" and values["changes"] == 1 and values["classify_ms"] > 0
    c.request("/ear/scene/save", "cafe")
    c.request("/ear/match/off")
    assert wait_until(lambda: np.abs(record(engine, 0.2)).max() == 0.0, timeout=20)

    # A scene holds the bed playing: recalled, it plays again (without the picture)
    c.request("/ear/scene/recall", "cafe", timeout=60)
    assert wait_until(lambda: _rms_db(record(engine, 0.2)) > bedaudio.LEVEL_DB - 1.5, timeout=20)
    status = c.request("/ear/match/status", reply="/ear/match/status.reply")
    assert dict(zip(status[::2], status[1::2], strict=True))["bed"] == "cafe 1.00"
    c.request("/ear/match/off")


def test_match_failures_are_answered(server: tuple[object, OscClient, Path]) -> None:
    app, c, tmp = server
    (tmp / "broken.png").write_bytes(b"\x89PNG broken")
    (tmp / "empty").mkdir()
    cases = [
        (("/ear/match", str(tmp / "broken.png")), "cannot read broken.png as an image"),
        (("/ear/match", "/etc/hostname"), "read only under"),
        (("/ear/match", str(tmp / "nothing.png")), "no such file"),
        (("/ear/match", "view"), "no view"),
        (("/ear/match", 3), "must be a string"),
        (("/ear/match/library", str(tmp / "empty")), "no sounds with a sidecar"),
        (("/ear/match/library", "/etc"), "read only under"),
        (("/ear/match/follow", 5.0), "no view to follow"),
        (("/ear/match/level", 9.0), "level must be in"),
        (("/ear/match/fade", 0.0), "fade must be in"),
    ]
    for (address, *args), reason in cases:
        c.drain()
        c.send(address, *args)
        fail = c.expect("/ear/fail", timeout=60)
        assert fail[0] == address and reason in fail[1], (address, fail)
    assert c.request("/ear/ping", reply="/ear/pong") is not None


def test_a_users_library_is_matched(server: tuple[object, OscClient, Path]) -> None:
    app, c, tmp = server
    folder = tmp / "mine"
    folder.mkdir()
    default = library.default_folder()
    shutil.copy(default / "traffic.flac", folder / "street.flac")
    (folder / "street.txt").write_text("moped\nmotor scooter\n")
    shutil.copy(default / "cafe.flac", folder / "bar.flac")
    (folder / "bar.txt").write_text("espresso\n")
    done = c.request("/ear/match/library", str(folder), timeout=60)
    assert done[1:] == [str(folder.resolve()), 2]
    Image.fromarray(data.stereo_motorcycle()[0]).save(tmp / "moto.png")
    reply = c.request("/ear/match", str(tmp / "moto.png"), reply="/ear/match.reply", timeout=60)
    assert reply[3] == "street"


def test_the_views_picture_chooses_the_bed_and_follow_repeats_it() -> None:
    from conftest import free_port

    app = make_server(Source("silence"), view_port=free_port())
    c = OscClient(app.osc.address)
    try:
        reply = c.request("/ear/match", "view", reply="/ear/match.reply", timeout=120)
        assert reply[0] == 1 and isinstance(reply[3], str) and reply[2] >= 0
        c.request("/ear/match/follow", 1.0)
        t0 = time.monotonic()
        seen = 0  # matches (their best beds) that follow made, a second apart
        while seen < 2 and time.monotonic() - t0 < 60:
            seen += c.expect("/ear/match.reply", timeout=60)[0] == 1
        assert seen == 2, "follow did not match the view again"
        c.request("/ear/match/follow", 0.0)
        status = c.request("/ear/match/status", reply="/ear/match/status.reply")
        values = dict(zip(status[::2], status[1::2], strict=True))
        assert values["matches"] >= 3 and values["follow"] == 0.0
    finally:
        c.close()
        app.stop()


def test_newer_pictures_supersede_older_and_the_order_holds(audio: AudioEngine, tmp_path: Path) -> None:
    """Pictures queued behind a busy worker: only the newest before an off is matched, the rest are
    answered as superseded, and an off between pictures stays between them."""
    from earsight.commands.base import Request
    from earsight.match.live import Matching
    from earsight.paths import Folders
    from earsight.supervise import Supervisor

    Image.fromarray(data.coffee()).save(tmp_path / "coffee.png")
    Image.fromarray(data.stereo_motorcycle()[0]).save(tmp_path / "moto.png")
    said: list[tuple[str, str, list[object]]] = []

    def request(name: str) -> Request:
        return Request(name, ("127.0.0.1", 1), ("127.0.0.1", 1), lambda to, a, args: said.append((name, a, list(args))),
                       Folders(tmp_path, (tmp_path,)))

    matching = Matching(audio, SR)
    for name, kind, path in (("first", "image", "coffee.png"), ("second", "image", "moto.png"), ("off", "off", None),
                             ("third", "image", "moto.png")):
        matching.request(kind, request(name), tmp_path / path if path else None)
    matching.start(Supervisor())  # started after the queue filled: as if busy with something before
    try:
        assert wait_until(lambda: any(n == "third" and a == "/ear/match.reply" for n, a, _ in said), timeout=120)
    finally:
        matching.stop()
        audio.set_bed(None, 0.05)
    order = [(n, a) for n, a, args in said if a != "/ear/match.reply" or args[0] == 1]
    assert order == [("first", "/ear/fail"), ("second", "/ear/match.reply"), ("off", "/ear/done"),
                     ("third", "/ear/match.reply")], order
    assert said[0][2] == ["first", "superseded by a later /ear/match"]
    assert matching.counters["superseded"] == 1 and matching.counters["changes"] == 2
