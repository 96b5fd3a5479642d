"""The README's own path: `earsight serve` as a process, driven by liblo's oscsend and oscdump."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import OscClient, free_port, wait_until

from earsight.cli import running_server

pytestmark = pytest.mark.skipif(shutil.which("oscsend") is None, reason="liblo-tools not installed (./setup.sh)")


@pytest.fixture(scope="module")
def served() -> Iterator[int]:
    """`earsight serve` with its defaults (no sound card: JACK dummy and the demo input)."""
    with running_server("--view-port", "0") as server:
        try:
            yield server.address[1]
        finally:
            print(server.log.read_text())


def oscsend(port: int, address: str, types: str = "", *args: object) -> None:
    subprocess.run(["oscsend", "localhost", str(port), address, types, *map(str, args)], check=True, timeout=10)


def dump(
    port: int, listen: int, enough: Callable[[list[str]], bool], *commands: tuple[object, ...], deadline: float = 30.0
) -> list[str]:
    """Run oscdump on ``listen`` while sending ``commands`` with oscsend, until its lines are ``enough``.

    The test waits for what it asks for, not for a fixed time: a loaded machine streams later, not less.
    """
    out = Path(f"/tmp/earsight-oscdump-{listen}.txt")
    with open(out, "w") as f:
        proc = subprocess.Popen(["stdbuf", "-oL", "oscdump", "-L", str(listen)], stdout=f, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.3)
        for command in commands:
            oscsend(port, *command)  # type: ignore[arg-type]
        lines: list[str] = []

        def read() -> bool:
            # oscdump prints "<timetag> <address> <types> <values...>"
            lines[:] = [line.split(" ", 1)[1] if not line.startswith("/") else line for line in out.read_text().splitlines()]
            return enough(lines)

        wait_until(read, timeout=deadline, every=0.1)
        return lines
    finally:
        proc.terminate()
        proc.wait(5)
        out.unlink(missing_ok=True)


def starting(lines: list[str], prefix: str) -> list[str]:
    return [line for line in lines if line.startswith(prefix)]


def test_oscdump_receives_level_and_layers_of_the_demo(served: int) -> None:
    listen = free_port()
    lines = dump(
        served, listen,
        lambda lines: len(starting(lines, "/ear/level ff")) >= 20 and len(starting(lines, "/ear/layers ")) >= 10,
        ("/ear/notify", "i", listen),
        ("/ear/stream", "sfi", "level", 20, listen),
        ("/ear/stream", "sfi", "layers", 10, listen),
        ("/ear/status",),  # replies to oscsend's own (closed) port: must not hurt
    )
    levels = starting(lines, "/ear/level ff")
    layers = starting(lines, "/ear/layers ")
    assert len(levels) >= 20 and len(layers) >= 10, lines[:20]
    assert max(float(line.split()[2]) for line in levels) > 0.001  # the demo is playing


def test_the_view_page_of_the_default_server_shows_the_picture(served: int) -> None:
    # oscsend's replies go to its own port: ask for the URL through a client that keeps its port
    client = OscClient(("127.0.0.1", served))
    try:
        url = client.request("/ear/view/url", reply="/ear/view/url.reply")[0]
    finally:
        client.close()
    assert isinstance(url, str)
    # the first frames may come before the ear's first activations (a dark picture is a small JPEG):
    # wait for the lit one, on a loaded machine too
    frames: list[bytes] = []

    def lit() -> bool:
        frames.append(urllib.request.urlopen(url + "frame.jpg", timeout=30).read())
        return len(frames[-1]) > 5000

    wait_until(lit, timeout=30, every=0.5)
    jpeg = frames[-1]
    assert jpeg[:2] == b"\xff\xd8" and len(jpeg) > 5000, len(jpeg)


def pitches(lines: list[str]) -> list[float]:
    return [float(line.split()[2]) for line in starting(lines, "/ear/pitch ff")]


def hears_440(hz: list[float]) -> bool:
    return len(hz) >= 20 and sum(abs(h - 440) < 10 for h in hz[-10:]) >= 8


def test_oscsend_switches_to_a_sine_and_oscdump_hears_its_pitch(served: int) -> None:
    listen = free_port()
    lines = dump(
        served, listen,
        lambda lines: hears_440(pitches(lines)),
        ("/ear/notify", "i", listen),
        ("/ear/input", "ssf", "test", "sine", 440),
        ("/ear/stream", "sfi", "pitch", 20, listen),
    )
    hz = pitches(lines)
    assert hears_440(hz), hz
