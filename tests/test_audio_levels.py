"""Block-rate features against known answers: a sine's level, a click train's onsets, an envelope's times."""

from __future__ import annotations

import math
import socket

import numpy as np
import pytest
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_message import OscMessage

from earsight.audio.blockstreams import BlockStreams, BlockSubscription
from earsight.audio.levels import Envelope, Onsets, attack_index, energy_db, level, onsets_offline

SR, BS = 48000, 256


def clicks(seconds: float, every: float, offset: int = 1000, amplitude: float = 0.8) -> tuple[np.ndarray, list[int]]:
    x = np.zeros(int(seconds * SR), np.float32)
    at = list(range(offset, len(x), int(every * SR)))
    x[at] = amplitude
    return x, at


def test_level_of_a_sine_is_its_rms_and_peak() -> None:
    t = np.arange(SR) / SR
    rms, peak = level(0.5 * np.sin(2 * np.pi * 440 * t))
    assert rms == pytest.approx(0.5 / math.sqrt(2), rel=1e-3)
    assert peak == pytest.approx(0.5, rel=1e-3)
    assert level(np.zeros(0)) == (0.0, 0.0)
    assert energy_db(np.ones(BS)) == pytest.approx(0.0, abs=1e-6)


def test_every_click_of_a_train_is_an_onset_at_its_sample() -> None:
    x, at = clicks(3.0, 0.25)
    found = onsets_offline(x, SR, BS)
    assert [s for s, _ in found] == at
    assert all(strength > 9.0 for _, strength in found)


@pytest.mark.parametrize("signal", ["sine", "noise"])
def test_a_steady_sound_starts_once_and_never_again(signal: str) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    steady = 0.3 * np.sin(2 * np.pi * 220 * t) if signal == "sine" else 0.1 * rng.standard_normal(len(t))
    x = np.concatenate([np.zeros(SR // 2), steady]).astype(np.float32)
    found = onsets_offline(x, SR, BS)
    assert len(found) == 1
    assert abs(found[0][0] - SR // 2) < BS


def test_a_threshold_above_the_rise_hears_nothing_and_the_refractory_time_holds() -> None:
    x, _ = clicks(1.0, 0.25)
    assert onsets_offline(x, SR, BS, threshold=200.0) == []
    dense, at = clicks(1.0, 0.02)  # clicks 20 ms apart, inside the 50 ms refractory time
    found = onsets_offline(dense, SR, BS)
    assert 0 < len(found) < len(at) / 2


def test_the_envelope_rises_at_its_attack_and_falls_at_its_release() -> None:
    env = Envelope(SR, BS, attack=0.005, release=0.15)
    on, off = np.full(BS, 0.8, np.float32), np.zeros(BS, np.float32)
    blocks_5ms = 0.005 * SR / BS
    for _ in range(round(blocks_5ms)):
        env.step(on)
    assert env.value == pytest.approx(0.8 * (1 - math.exp(-round(blocks_5ms) / blocks_5ms)), rel=1e-6)
    for _ in range(100):
        env.step(on)
    top = env.value
    blocks_150ms = 0.15 * SR / BS
    for _ in range(round(blocks_150ms)):
        env.step(off)
    assert env.value == pytest.approx(top * math.exp(-round(blocks_150ms) / blocks_150ms), rel=1e-6)


def test_attack_index_finds_the_first_sample_at_half_the_peak() -> None:
    block = np.zeros(BS, np.float32)
    block[100], block[130] = 0.5, 1.0
    assert attack_index(block) == 100
    assert attack_index(np.zeros(BS)) == 0


def _receive(sock: socket.socket) -> list[bytes]:
    out = []
    while True:
        try:
            out.append(sock.recv(65536))
        except BlockingIOError:
            return out


def test_streamed_onsets_equal_the_offline_answer_in_every_format() -> None:
    """The hook fed block by block sends what :func:`onsets_offline` finds, as list, flat and bundles."""
    x, at = clicks(2.0, 0.25)
    sinks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        for s in sinks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)  # read after the run: hold it all
            s.bind(("127.0.0.1", 0))
            s.setblocking(False)
        streams = BlockStreams(SR, BS)
        streams.set([
            BlockSubscription(sinks[0].getsockname(), "list", False, (("onset", 1000.0), ("level", 1000.0))),
            BlockSubscription(sinks[1].getsockname(), "flat", False, (("onset", 1000.0),)),
            BlockSubscription(sinks[2].getsockname(), "list", True, (("onset", 1000.0),)),
        ])
        t0 = 1_000_000.0
        for i in range(0, len(x) - BS + 1, BS):
            streams.on_block(x[i : i + BS], t0 + (i + BS) / SR)
        listed = [OscMessage(d) for d in _receive(sinks[0])]
        onsets = [m.params for m in listed if m.address == "/ear/onset"]
        levels = [m.params for m in listed if m.address == "/ear/level"]
        assert len(onsets) == len(at) == len(onsets_offline(x, SR, BS))
        # age: from the attack to the end of its block
        assert [round((BS - a % BS) / SR, 6) for a in at] == [round(age, 6) for _, age in onsets]
        assert len(levels) == len(x) // BS and max(p for _, p in levels) == pytest.approx(0.8)
        flat = [OscMessage(d) for d in _receive(sinks[1])]
        assert [m.address for m in flat] == ["/ear/onset/strength", "/ear/onset/age"] * len(at)
        bundles = [OscBundle(d) for d in _receive(sinks[2])]
        assert [round(b.timestamp - t0, 4) for b in bundles] == [round(a / SR, 4) for a in at]
    finally:
        for s in sinks:
            s.close()
    assert streams.errors == 0 and streams.sent == len(at) * (1 + 2 + 1) + len(x) // BS


def test_a_lower_rate_reports_the_peak_of_every_block_it_covers() -> None:
    x, at = clicks(1.0, 0.25)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setblocking(False)
    try:
        streams = BlockStreams(SR, BS)
        streams.set([BlockSubscription(sink.getsockname(), "list", False, (("level", 10.0),))])
        for i in range(0, len(x) - BS + 1, BS):
            streams.on_block(x[i : i + BS], float(i))
        levels = [OscMessage(d).params for d in _receive(sink)]
    finally:
        sink.close()
    assert 9 <= len(levels) <= 10
    peaks = sum(1 for _, p in levels if p == pytest.approx(0.8))
    assert peaks == len(at), "no click falls between two messages"


def test_an_onset_detector_fed_any_block_split_agrees_with_itself() -> None:
    """State carries across blocks: the same audio in the same blocks gives the same onsets twice."""
    x, _ = clicks(1.0, 0.1)
    a, b = Onsets(SR, BS), Onsets(SR, BS)
    first = [a.step(x[i : i + BS]) for i in range(0, len(x) - BS + 1, BS)]
    second = [b.step(x[i : i + BS].copy()) for i in range(0, len(x) - BS + 1, BS)]
    assert [o and (o.offset, o.strength) for o in first] == [o and (o.offset, o.strength) for o in second]
