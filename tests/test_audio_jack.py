"""JACK on a headless box: a dummy server clocked at the rate asked for, and the xrun counter joins it."""

from __future__ import annotations

import shutil

import pytest

from earsight.audio import jack


@pytest.mark.skipif(shutil.which("jackd") is None, reason="needs jackd (Debian jackd2)")
def test_a_dummy_server_starts_at_the_rate_asked_and_the_xrun_monitor_joins_it() -> None:
    if jack.running():
        pytest.skip("a JACK server is already running here: not ours to measure")
    proc = jack.start_dummy(sample_rate=44100, block=512)
    try:
        assert jack.running()
        monitor = jack.XrunMonitor("earsight-test-xruns")
        try:
            assert (monitor.client.samplerate, monitor.client.blocksize) == (44100, 512)
        finally:
            monitor.close()
    finally:
        proc.terminate()
        proc.wait(5)
    assert not jack.running()
