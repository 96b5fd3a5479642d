"""Shared fixtures: a real server (pyo in its own process, manual clock), a real OSC client."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

os.environ.setdefault("PYO_GUI_WX", "0")

from earsight.app import App, AppConfig  # noqa: E402
from earsight.audio import AudioConfig, AudioEngine, Source  # noqa: E402
from earsight.ears import registry  # noqa: E402
from earsight.ears.base import Ear  # noqa: E402


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, every: float = 0.02) -> bool:
    """Poll ``condition`` every ``every`` s until it holds (True) or ``timeout`` s pass (False):
    a loaded machine does things later, not less, so tests wait for what they ask for."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


TEST_THREADS = tuple(int(n) for n in os.environ.get("EARSIGHT_TEST_THREADS", "1,2").split(","))
"""Torch thread counts the numerical tests run under (each test once per count): a bound that
holds for one count's rounding only fails here, not on another machine."""


@pytest.fixture(scope="module", params=TEST_THREADS, ids=lambda n: f"{n}thread")
def torch_threads(request: pytest.FixtureRequest) -> Iterator[int]:
    """Torch on 1, then 2 threads (``EARSIGHT_TEST_THREADS``) for a module; the previous count after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(request.param))
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def project_version() -> str:
    """The version pyproject.toml gives: the quark, the Pd library and the Max package name the same."""
    found = re.search(r'^version = "([^"]+)"', (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(), re.M)
    assert found is not None, "pyproject.toml names no version"
    return found.group(1)


def load_patchdoc() -> ModuleType:
    """patches/patchdoc.py: a development tool beside the patches, not part of the package."""
    if "patchdoc" in sys.modules:
        return sys.modules["patchdoc"]
    path = Path(__file__).resolve().parents[1] / "patches" / "patchdoc.py"
    spec = importlib.util.spec_from_file_location("patchdoc", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["patchdoc"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OscClient:
    """A plain UDP OSC client with a fixed port, like sclang or Max."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def send(self, address: str, *args: object, types: str | None = None) -> None:
        builder = OscMessageBuilder(address)
        for i, arg in enumerate(args):
            builder.add_arg(arg, types[i] if types else None)
        self.sock.sendto(builder.build().dgram, self.server)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendto(data, self.server)

    def receive(self, timeout: float = 2.0) -> list[tuple[str, list[object]]]:
        """Messages of the next datagram (bundles unpacked), or [] on timeout."""
        self.sock.settimeout(timeout)
        try:
            data, _ = self.sock.recvfrom(65536)
        except (TimeoutError, BlockingIOError):  # a zero timeout makes the socket non-blocking
            return []
        return [(m.message.address, list(m.message.params)) for m in OscPacket(data).messages]

    def expect(self, address: str, timeout: float = 5.0) -> list[object]:
        """Arguments of the next message at ``address``; fails the test after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for addr, args in self.receive(max(0.01, deadline - time.monotonic())):
                if addr == address:
                    return args
        raise AssertionError(f"no {address} within {timeout} s")

    def request(
        self, address: str, *args: object, reply: str = "/ear/done", types: str | None = None, timeout: float = 15.0
    ) -> list[object]:
        """Send a command and return its answer; a /ear/fail fails the test with its reason."""
        self.drain()
        self.send(address, *args, types=types)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for addr, values in self.receive(0.5):
                if addr == "/ear/fail" and values and values[0] == address:
                    raise AssertionError(f"{address} failed: {values[1:]}")
                if addr == reply and (reply != "/ear/done" or values[:1] == [address]):
                    return values
        raise AssertionError(f"no {reply} for {address}")

    def drain(self) -> None:
        while self.receive(0.0):
            pass

    def close(self) -> None:
        self.sock.close()


SINE_440 = Source("test", "sine", 440.0)


def make_server(
    source: Source = SINE_440, ear: str = "crepe", backend: str = "manual", view_port: int | None = None,
    out_dir: Path | None = None,
) -> App:
    """A started server on a free port; the caller stops it."""
    # Tests write and read under the temporary folder (pytest's tmp_path): the server allows it.
    tmp = Path(tempfile.gettempdir())
    app = App(
        AppConfig(port=free_port(), ear=ear, source=source, audio=AudioConfig(backend=backend), view_port=view_port,
                  out_dir=out_dir or tmp, allow_dirs=(tmp, Path.cwd()))
    )
    app.start()
    return app


@pytest.fixture(scope="module")
def server() -> Iterator[App]:
    """A running server listening to a 440 Hz sine through CREPE (module-wide: starting costs seconds)."""
    app = make_server()
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture
def client(server: App) -> Iterator[OscClient]:
    c = OscClient(server.osc.address)
    try:
        yield c
    finally:
        if ("127.0.0.1", c.port) in server.streams.subscribers:
            server.streams.unsubscribe(("127.0.0.1", c.port))
        c.close()


@pytest.fixture(scope="module")
def crepe() -> Ear:
    return registry.load("crepe")


@pytest.fixture(scope="module")
def musicnn() -> Ear:
    return registry.load("musicnn")


@pytest.fixture
def xvfb() -> Iterator[str]:
    """An X server for window tests; its display name."""
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed")
    display = f":{90 + os.getpid() % 50}"
    proc = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{display[1:]}").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        yield display
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def audio() -> Iterator[AudioEngine]:
    """The audio process alone (pyo's manual backend, in real time, 48 kHz), listening to silence;
    one per test module."""
    engine = AudioEngine(AudioConfig(backend="manual", sample_rate=48000), Source("silence"))
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()
