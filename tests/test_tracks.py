"""Several tracks: twins of an ear (shared weights, their own streaming state, one batch), the
/ear/<track>/... addresses, and two tracks with different ears streaming at once through JACK."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import OscClient, free_port, wait_until

from earsight.app import App, AppConfig
from earsight.audio import AudioConfig, Source
from earsight.audio import jack as jackmod
from earsight.commands.dispatch import split_track
from earsight.ears import registry
from earsight.ears.base import Ear, batchable, process_together


def test_a_track_number_is_split_from_the_address() -> None:
    assert split_track("/ear/2/select") == (2, "/ear/select")
    assert split_track("/ear/12/model/load") == (12, "/ear/model/load")
    assert split_track("/ear/select") == (1, "/ear/select")
    assert split_track("/ear/2") == (1, "/ear/2")  # no command after the number: not a track's


def _signals(sr: int) -> list[np.ndarray]:
    t = np.arange(sr) / sr
    rng = np.random.default_rng(0)
    return [0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32),
            (0.3 * rng.standard_normal(sr) * (np.arange(sr) % 4000 < 400)).astype(np.float32)]


@pytest.mark.parametrize("name", ["crepe", "cpc"])
def test_twins_share_the_weights_and_stream_what_each_alone_would(name: str) -> None:
    ear = registry.load(name)
    twin = ear.twin()
    assert twin.family() is ear.family() and registry.load(name).family() is not ear.family()
    shared = [p.data_ptr() for p in _parameters(ear)]
    assert shared and [p.data_ptr() for p in _parameters(twin)] == shared  # the same memory, not a copy
    signals = _signals(ear.sample_rate)
    alone = [registry.load(name).analyse(x) for x in signals]  # each on an ear of its own, offline
    got: list[dict[str, list[np.ndarray]]] = [{k: [] for k in alone[0]} for _ in signals]
    step = 1000  # blocks that end mid-hop, so each twin keeps samples of its own waiting
    for start in range(0, signals[0].shape[0], step):
        outs = process_together([ear, twin], [x[start : start + step] for x in signals])
        for frames, into in zip(outs, got, strict=True):
            for k, v in frames.items():
                into[k].append(v)
    assert batchable([ear, twin]) == (name == "crepe")  # CPC's streams run one after the other
    for streamed, offline in zip(got, alone, strict=True):
        for k, want in offline.items():
            have = np.concatenate(streamed[k])
            assert have.shape == want.shape, k
            scale = max(float(np.abs(want).max()), 1e-6)
            assert np.abs(have - want).max() <= 1e-4 * scale, (name, k)  # batching changes rounding only


def _parameters(ear: Ear) -> list:  # type: ignore[type-arg]
    nets = [v for v in vars(ear).values() if hasattr(v, "parameters")]
    return [p for net in nets for p in net.parameters()]


# ---------------------------------------------------------------- a server with two tracks


@pytest.fixture(scope="module")
def two_tracks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    app = App(AppConfig(port=free_port(), ear="crepe", source=Source("test", "sine", 440.0), view_port=0,
                        audio=AudioConfig(backend="manual", inputs=2), out_dir=tmp_path_factory.mktemp("tracks")))
    app.start()
    try:
        yield app
    finally:
        app.stop()


def test_each_track_has_its_own_selection_and_streams(two_tracks: App) -> None:
    c = OscClient(two_tracks.osc.address)
    try:
        assert c.request("/ear/2/select", "conv6", 3) == ["/ear/2/select"]
        assert two_tracks.tracks[1]["state"].selection.channels == (3,)
        assert two_tracks.state.selection.channels != (3,)  # track 1's is its own
        c.request("/ear/notify")
        c.request("/ear/2/notify")
        c.request("/ear/2/stream", "act", 20.0)
        c.request("/ear/stream", "pitch", 20.0)
        assert len(c.expect("/ear/2/act")) == 1  # track 2's one channel
        assert len(c.expect("/ear/pitch")) == 2  # and track 1's pitch, at once
        info = c.request("/ear/2/model/info", reply="/ear/model/info.reply")
        assert info[:2] == ["name", "crepe"]
        status = c.request("/ear/status", reply="/ear/status.reply")
        values = dict(zip(status[::2], status[1::2], strict=True))
        assert values["tracks"] == 2 and values["ear.2"] == "crepe" and values["frames.2"] > 0
        assert values["batched"] > 0, "two tracks with one ear ran their hops as one batch"
        for args, reason in ((("/ear/3/select", "conv6", 1), "no track 3"),
                             (("/ear/2/view", "layout"), "the server's, not a track's"),
                             (("/ear/2/stream", "level", 10.0), "track 1's"),
                             (("/ear/2/select", "conv6", 99), "no channel 99")):
            c.drain()
            c.send(*args)
            fail = c.expect("/ear/fail")
            assert fail[0] == args[0] and reason in str(fail[1]), fail
        c.request("/ear/1/select", "conv6", 5)  # track 1 answers to its number too
        assert two_tracks.state.selection.channels == (5,)
    finally:
        c.close()


# ---------------------------------------------------------------- through JACK


class _Sines:
    """A JACK client playing a sine into each of its ports."""

    def __init__(self, freqs: list[float], sample_rate: int) -> None:
        import jack

        self.client = jack.Client("earsight-test-sines", no_start_server=True)
        self.ports = [self.client.outports.register(f"out_{k + 1}") for k in range(len(freqs))]
        self.freqs, self.sr, self.n = freqs, sample_rate, 0
        self.client.set_process_callback(self._process)
        self.client.activate()

    def _process(self, frames: int) -> None:
        t = (self.n + np.arange(frames)) / self.sr
        for port, f in zip(self.ports, self.freqs, strict=True):
            port.get_array()[:] = 0.5 * np.sin(2 * np.pi * f * t)
        self.n += frames

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def _median_hz(c: OscClient, address: str, frames: int = 30) -> float:
    hz = []
    deadline = time.monotonic() + 20
    while len(hz) < frames and time.monotonic() < deadline:
        for addr, args in c.receive(0.5):
            if addr == address and float(args[1]) > 0.5:
                hz.append(float(args[0]))
    assert len(hz) >= frames // 2, f"only {len(hz)} confident {address} frames"
    return float(np.median(hz))


@pytest.mark.skipif(shutil.which("jackd") is None, reason="needs jackd (Debian jackd2)")
def test_two_tracks_with_different_ears_stream_at_once_through_jack(tmp_path: Path) -> None:
    assert not jackmod.running(), "a JACK server is already running"
    jackd = jackmod.start_dummy(48000, 256)
    app = sines = None
    try:
        app = App(AppConfig(port=free_port(), ear="crepe", source=Source("device"), out_dir=tmp_path,
                            audio=AudioConfig(backend="jack", inputs=2, jack_name="earsight-tracks")))
        app.start()
        sines = _Sines([440.0, 220.0], 48000)
        for k in (1, 2):  # each sine into its own input port
            sines.client.connect(f"earsight-test-sines:out_{k}", f"earsight-tracks:input_{k}")
        c = OscClient(app.osc.address)
        c.request("/ear/notify")
        c.request("/ear/2/notify")
        c.request("/ear/stream", "pitch", 50.0)
        c.request("/ear/2/stream", "pitch", 50.0)
        assert abs(_median_hz(c, "/ear/pitch") - 440.0) < 10
        assert abs(_median_hz(c, "/ear/2/pitch") - 220.0) < 6

        # Track 2 changes ear: tags from it while track 1 still hears its pitch
        c.request("/ear/2/model/load", "musicnn", timeout=120)
        c.request("/ear/2/stream", "tags", 10.0)
        tags = c.expect("/ear/2/tags", timeout=30)
        assert len(tags) == 50 and all(0.0 <= float(v) <= 1.0 for v in tags)
        assert abs(_median_hz(c, "/ear/pitch") - 440.0) < 10
        status = c.request("/ear/status", reply="/ear/status.reply")
        values = dict(zip(status[::2], status[1::2], strict=True))
        assert values["ear.2"] == "musicnn" and values["ear"] == "crepe"
        assert wait_until(lambda: app is not None and app.listener.tracks[1].frames > 2, timeout=20)
        c.close()
    finally:
        if sines is not None:
            sines.close()
        if app is not None:
            app.stop()
        jackd.terminate()
        jackd.wait(10)


def test_a_scene_holds_every_tracks_ear_selection_and_streams(two_tracks: App) -> None:
    c = OscClient(two_tracks.osc.address)
    track2 = two_tracks.tracks[1]
    try:
        c.request("/ear/2/select", "conv6", 3)
        c.request("/ear/2/top", 2, 0.5)
        c.request("/ear/2/stream", "act", 20.0)
        c.request("/ear/scene/save", "both")
        lines = {}
        c.send("/ear/scene/show", "both")
        while "/ear/done" not in lines:
            for address, args in c.receive(5.0):
                if address in ("/ear/scene/show.reply", "/ear/done"):
                    lines[str(args[0]) if address != "/ear/done" else address] = args[1:]
        assert lines["/ear/2/select"] == ["conv6", 3] and lines["/ear/2/model/load"] == ["crepe"]
        assert "act" in lines["subscriber.2"]
        c.request("/ear/2/select", "conv6", 4)
        c.request("/ear/2/top", 5, 0.1)
        c.request("/ear/2/stream", "act", 0.0)
        c.request("/ear/scene/recall", "both", timeout=60)
        assert track2["state"].selection.channels == (3,) and track2["state"].top == (2, 0.5)
        assert track2["streams"].subscribers[("127.0.0.1", c.port)].rates == {"act": 20.0}
    finally:
        c.close()


def test_the_picture_shows_the_track_asked_for(two_tracks: App) -> None:
    display = two_tracks.display
    assert display is not None
    c = OscClient(two_tracks.osc.address)
    try:
        c.request("/ear/2/model/load", "cpc", timeout=60)
        c.request("/ear/view/track", 2, timeout=60)
        assert display.renderer is not None and display.renderer.ear.name == "cpc"  # track 2's ear, laid out
        c.request("/ear/2/select", "conv3", 5)  # the shown track's selection lights in the picture
        assert wait_until(lambda: display.renderer is not None and display.renderer.selection == ("conv3", [5]))
        c.drain()
        c.send("/ear/view/track", 3)
        assert "no track 3" in str(c.expect("/ear/fail")[1])
        c.request("/ear/view/track", 1, timeout=60)
        assert display.renderer is not None and display.renderer.ear.name == "crepe"
        c.request("/ear/2/model/load", "crepe", timeout=60)
    finally:
        c.close()
