"""Faults with the real components: JACK killed and started again, a full disk, no GL, broken weights,
a thread that dies. The server says what happened and goes on."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from earsight.audio import jack
from earsight.bench.common import status_of
from earsight.cli import running_server
from earsight.errors import EarsightError


def _until(condition: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until ``condition()`` held, or None after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(0.1)
    return None


@pytest.mark.slow
def test_jack_killed_and_started_again_the_server_reconnects_within_5_s() -> None:
    assert not jack.running(), "a JACK server is already running"
    jackd = jack.start_dummy(48000, 256)
    try:
        with running_server("--no-view", "--backend", "jack", "--input", "test", "--test", "sine") as served:
            address = served.address
            assert _until(lambda: status_of(address)["audio"] == "running", 10.0) is not None
            jackd.kill()
            jackd.wait(5)
            assert _until(lambda: status_of(address)["audio"] == "waiting for JACK", 10.0) is not None
            assert status_of(address)["audio"] == "waiting for JACK"  # it waits; it does not spin restarting
            jackd = jack.start_dummy(48000, 256)
            frames = int(status_of(address)["frames"])
            took = _until(
                lambda: (s := status_of(address))["audio"] == "running" and int(s["frames"]) > frames + 10,
                10.0,
            )
            assert took is not None and took <= 5.0, took
            assert int(status_of(address)["audio_restarts"]) >= 1
            assert served.process.poll() is None
            assert "JACK server is gone" in served.log.read_text()
    finally:
        jackd.kill()
        jackd.wait(5)


# ------------------------------------------------------------------ broken weights


def _truncated(src: Path, dst: Path, keep: float = 0.5) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def test_truncated_cpc_weights_give_an_error_naming_the_file(tmp_path: Path) -> None:
    from earsight.ears import cpc
    from earsight.paths import models_dir

    broken = _truncated(models_dir() / "cpc.safetensors", tmp_path / "mine.safetensors")
    with pytest.raises(EarsightError, match=f"cannot load the weights in {broken}") as info:
        cpc.load(broken)
    assert "broken or truncated" in str(info.value)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(EarsightError, match=str(garbage)):
        cpc.load(garbage)


def test_truncated_crepe_weights_give_an_error_naming_the_file(tmp_path: Path) -> None:
    from earsight.ears.crepe import load_state, weights_path
    from earsight.ears.weights import reading

    broken = _truncated(weights_path("tiny"), tmp_path / "tiny.pth")
    with pytest.raises(EarsightError, match=f"CREPE tiny: cannot load the weights in {broken}"):
        with reading(broken, "CREPE tiny") as path:
            load_state(path)


def test_corrupt_musicnn_weights_give_an_error_naming_the_file(tmp_path: Path) -> None:
    from earsight.ears.musicnn import converted_weights, load_network

    broken = _truncated(converted_weights(), tmp_path / "musicnn.safetensors", keep=0.9)
    with pytest.raises(EarsightError, match=f"musicnn: cannot load the weights in {broken}"):
        load_network(broken)
