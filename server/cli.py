"""The ``earsight`` command: serve, analyse, bench, ears, and the other stages' commands."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audio import BACKENDS, SOURCE_KINDS, AudioConfig, Source
from .errors import EarsightError

log = logging.getLogger("earsight")

# Commands that live with their stage: name -> (module, help). Each module has add_arguments/run.
STAGE_COMMANDS = {
    "analyse": ("earsight.analyse", "run an ear offline on a file: activations (.npz) and a plot (.png)"),
    "bench": ("earsight.bench", "measure latency, real-time factors, xruns, OSC throughput"),
    "train": ("earsight.train", "train a CPC ear on folders of your music"),
    "probe": ("earsight.train.reprobe", "run the linear probes (pitch class, instrument, key) on a CPC ear"),
    "data": ("earsight.train.data", "build the default ear's training audio from Debian packages and music21"),
    "layout": ("earsight.layout", "lay out an ear's neurons in 2-D (cached) and draw them to a PNG"),
    "render": ("earsight.render", "render the activation picture of a file to a video"),
    "dream": ("earsight.sonify.cli", "dream: optimise a file so chosen neurons respond more"),
    "auralise": ("earsight.sonify.cli", "auralise: listen to one feature map through the original phase"),
    "match": ("earsight.match.cli", "the ambient bed a picture chooses: list the best beds, write one to a file"),
}


def has_sound_card() -> bool:
    cards = Path("/proc/asound/cards")
    if cards.exists():
        return "no soundcards" not in cards.read_text()
    return sys.platform != "linux"  # macOS, Windows: portaudio finds the system's device


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    from .ears import registry

    p.add_argument("--host", default="127.0.0.1", help="OSC address to bind (default 127.0.0.1; 0.0.0.0 for the network)")
    p.add_argument("--port", type=int, default=9000, help="OSC port (default 9000)")
    p.add_argument("--ear", default=registry.DEFAULT, choices=registry.names(), help="the ear to start with")
    p.add_argument("--input", default=None, metavar="KIND", help=f"one of {', '.join(SOURCE_KINDS)} (default: device with a sound card, else demo)")
    p.add_argument("--file", default="", help="the file for --input file")
    p.add_argument("--test", default="sine", help="the test signal for --input test (sine, clicks, noise, sweep)")
    p.add_argument("--value", type=float, default=0.0, help="the test signal's parameter (Hz for sine)")
    p.add_argument("--backend", default="auto", choices=("auto", *BACKENDS), help="audio backend (auto: JACK if running, else a sound card, else jackd -d dummy)")
    p.add_argument("--sample-rate", type=int, default=48000)
    p.add_argument("--block", type=int, default=256, help="audio block size in samples")
    p.add_argument("--inputs", type=int, default=1,
                   help="tracks the ear hears (1-16): track 1 the input, track k the device's (JACK's) input k, "
                        "each with its own ear, selection and streams at /ear/<k>/...")
    p.add_argument("--threads", type=int, default=1, help="torch threads for the ear")
    p.add_argument("--view-port", type=int, default=8080, help="port of the web page with the live picture (default 8080)")
    p.add_argument("--no-view", action="store_true", help="no picture: saves the CPU that drawing takes")
    p.add_argument("--window", action="store_true", help="also show the picture in a window (needs a display)")
    p.add_argument("--out-dir", type=Path, default=None, help="where files asked for over OSC are written (default: the cache folder)")
    p.add_argument("--allow-dir", type=Path, action="append", default=[], metavar="DIR",
                   help="a folder whose files OSC may name as input (repeatable; default: the working directory)")
    p.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: run until Ctrl-C)")


def serve(args: argparse.Namespace) -> int:
    from .app import App, AppConfig
    from .audio import jack

    backend, jackd = args.backend, None
    card = has_sound_card()
    if backend == "auto":
        if jack.running():
            backend = "jack"
        elif card:
            backend = "portaudio"
        else:
            log.info("no sound card and no JACK server: starting jackd -d dummy -r %d -p %d", args.sample_rate, args.block)
            jackd = jack.start_dummy(args.sample_rate, args.block)
            backend = "jack"
    kind = args.input or ("device" if card else "demo")
    source = Source(kind, args.file if kind == "file" else args.test if kind == "test" else "", args.value)
    config = AppConfig(
        host=args.host, port=args.port, ear=args.ear, source=source, threads=args.threads,
        view_port=None if args.no_view else args.view_port, window=args.window,
        out_dir=args.out_dir, allow_dirs=tuple(args.allow_dir),
        audio=AudioConfig(backend=backend, sample_rate=args.sample_rate, block=args.block, inputs=args.inputs),
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        app = App(config)
        with app:
            host, port = app.osc.address
            log.info(
                "earsight: ear %s, input %s, audio %s at %d Hz / %d, OSC on %s:%d",
                app.state.name, app.audio.source.describe(), backend, args.sample_rate, args.block, host, port,
            )
            log.info("try: oscdump -L 9001 & oscsend %s %d /ear/stream sfi pitch 10 9001", host, port)
            if app.display is not None:
                log.info("the live picture: %s", app.display.url)
            print(f"earsight ready on {host}:{port}", flush=True)
            stop.wait(args.seconds or None)
            log.info("stopping: %s", app.status())
    finally:
        if jackd is not None:
            jackd.terminate()
            jackd.wait(5)
    return 0


@dataclass
class Served:
    """A server started by :func:`running_server`."""

    process: subprocess.Popen[bytes]
    address: tuple[str, int]
    log: Path


@contextlib.contextmanager
def running_server(*args: str, env: dict[str, str] | None = None, timeout: float = 120.0) -> Iterator[Served]:
    """``earsight serve ARGS`` as its own process on a free OSC port, stopped (SIGTERM) on exit.

    For benchmarks and tests that need the server as users run it: their own clients must not
    share its GIL.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    handle, name = tempfile.mkstemp(prefix="earsight-serve-", suffix=".log")
    log = Path(name)
    with os.fdopen(handle, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "earsight.cli", "serve", "--port", str(port), *args],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + timeout
        while "earsight ready" not in log.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise EarsightError("the server did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.2)
        yield Served(process, ("127.0.0.1", port), log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.unlink(missing_ok=True)


def ears(args: argparse.Namespace) -> int:
    from .ears import registry

    for name, entry in registry.EARS.items():
        print(f"{name:12s} {entry.doc}")
    for name, path in registry.trained().items():
        print(f"{name:12s} a CPC ear you trained ({path})")
    return 0


README_MARKERS = ("<!-- osc-reference:begin -->", "<!-- osc-reference:end -->")


def oscdoc(args: argparse.Namespace) -> int:
    from .commands import reference_markdown

    text = reference_markdown()
    if not args.write:
        print(text)
        return 0
    readme = Path(args.readme)
    begin, end = README_MARKERS
    content = readme.read_text()
    if begin not in content or end not in content:
        raise EarsightError(f"{readme} has no {begin} ... {end} block")
    head, rest = content.split(begin, 1)
    tail = rest.split(end, 1)[1]
    readme.write_text(f"{head}{begin}\n{text}\n{end}{tail}")
    print(f"wrote the OSC reference into {readme}")
    return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s stage module is imported (they pull in torch, GL, ...)."""
    parser = argparse.ArgumentParser(prog="earsight", description="An artificial ear you can play.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server (OSC control, audio, streams)")
    if command == "serve":  # its --ear choices ask the registry, which looks for trained ears on disk
        add_serve_arguments(serve)
    sub.add_parser("ears", help="list the ears")
    doc = sub.add_parser("oscdoc", help="print the OSC reference (Markdown) from the command table")
    doc.add_argument("--write", action="store_true", help="rewrite the reference block of the README")
    doc.add_argument("--readme", default="README.md")
    for name, (module, help_text) in STAGE_COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        p.set_defaults(stage_module=module)
        if name == command:
            mod: Any = importlib.import_module(module)
            adder = getattr(mod, f"add_{name}_arguments", None) or mod.add_arguments
            adder(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("PYO_GUI_WX", "0")
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(levelname)s: %(message)s"
    )
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "ears":
            return ears(args)
        if args.command == "oscdoc":
            return oscdoc(args)
        mod: Any = importlib.import_module(args.stage_module)
        runner = getattr(mod, f"run_{args.command}", None) or mod.run
        return int(runner(args) or 0)
    except EarsightError as exc:
        log.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
