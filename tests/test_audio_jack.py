"""JACK on a headless box: a dummy server clocked at the rate asked for, and the xrun counter joins it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from earsight.audio import jack

pytestmark = pytest.mark.skipif(shutil.which("jackd") is None, reason="needs jackd (Debian jackd2)")


@contextmanager
def dummy_jack(sample_rate: int, block: int, name: str) -> Iterator[jack.XrunMonitor]:
    """A dummy JACK server of our own with an xrun monitor on it; both gone afterwards."""
    if jack.running():
        pytest.skip("a JACK server is already running here: not ours to measure")
    proc = jack.start_dummy(sample_rate=sample_rate, block=block)
    try:
        monitor = jack.XrunMonitor(name)
        try:
            yield monitor
        finally:
            monitor.close()
    finally:
        proc.terminate()
        proc.wait(5)


def test_a_dummy_server_starts_at_the_rate_asked_and_the_xrun_monitor_joins_it() -> None:
    with dummy_jack(44100, 512, "earsight-test-xruns") as monitor:
        assert jack.running()
        assert (monitor.client.samplerate, monitor.client.blocksize) == (44100, 512)
    assert not jack.running()


def test_the_machine_baselines_count_idle_then_busy_loops_that_end_with_the_call() -> None:
    from earsight.bench.common import xrun_baselines

    with dummy_jack(48000, 256, "earsight-test-baselines") as monitor:
        spun = os.times().children_user
        idle, busy = xrun_baselines(monitor, 1.0)
        spun = os.times().children_user - spun
    assert idle >= 0 and busy >= 0
    # The loops really spun (niced, they still get most of an otherwise quiet machine), and were reaped.
    assert spun > 0.1
    assert not [p for p in os.listdir("/proc") if p.isdigit() and _is_busy_loop(p)]


def _is_busy_loop(pid: str) -> bool:
    from earsight.bench.common import BUSY_LOOP

    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return BUSY_LOOP.encode() in f.read()
    except OSError:
        return False
