"""JACK on a headless box: find a running server or start ``jackd -d dummy``; count its xruns."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
import threading
import time

from ..errors import EarsightError

log = logging.getLogger(__name__)


def running() -> bool:
    """True when a JACK server answers (checked without starting one)."""
    try:
        import jack
    except (ImportError, OSError):
        return False
    try:
        client = jack.Client("earsight-probe", no_start_server=True)
    except jack.JackError:
        return False
    client.close()
    return True


def _die_with_parent() -> None:
    """In the child before exec: Linux sends it SIGTERM when the server dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_dummy(sample_rate: int = 48000, block: int = 256, timeout: float = 10.0) -> subprocess.Popen[bytes]:
    """Start ``jackd -d dummy``: clocked like a sound card, for machines that have none."""
    exe = shutil.which("jackd")
    if exe is None:
        raise EarsightError("jackd is not installed (Debian: jackd2); run ./setup.sh")
    proc = subprocess.Popen(
        [exe, "-d", "dummy", "-r", str(sample_rate), "-p", str(block)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EarsightError(f"jackd exited with code {proc.returncode}")
        if running():
            return proc
        time.sleep(0.1)
    proc.kill()
    raise EarsightError("jackd did not come up")


class XrunMonitor:
    """A passive JACK client whose only job is to count the server's xruns."""

    def __init__(self, name: str = "earsight-xruns") -> None:
        import jack

        self.count = 0
        self._lock = threading.Lock()
        self.client = jack.Client(name, no_start_server=True)
        self.client.set_xrun_callback(self._on_xrun)
        self.client.activate()

    def _on_xrun(self, delay: float) -> None:
        with self._lock:
            self.count += 1

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()
