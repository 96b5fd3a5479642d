"""The engine: audio process, ear worker, OSC control and streams, wired together.

Threads of the server process: the OSC receiver (and its scheduler for future bundles), the ear
worker (reads the input ring, resamples, runs the ear hop by hop, computes the wanted features,
publishes them), and loaders that prepare a new ear off to the side. Changes are staged and
swapped in by the worker between hops, so the ear never sees a half-made state.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from . import commands
from .audio import AudioConfig, AudioEngine, Source
from .ears import registry
from .ears.base import Ear
from .errors import BadRequest, EarsightError, NotFound
from .features import MAX_EMBED_DIMS, STREAMS, Embedding, FrameContext, Selection, fit_embedding
from .osc import Incoming, OscServer, is_pattern, pattern
from .resample import Resampler
from .ring import Ring
from .sonify.live import Sonifier
from .streams import Address, Streams, message

if TYPE_CHECKING:
    from .display import Display

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Request:
    """One command being handled: what was sent, by whom, and where its answers go."""

    address: str
    sender: Address
    reply_to: Address


@dataclass
class EngineConfig:
    host: str = "127.0.0.1"
    port: int = 9000
    ear: str = registry.DEFAULT
    source: Source = field(default_factory=Source)
    audio: AudioConfig = field(default_factory=AudioConfig)
    threads: int = 1
    """torch threads for the ear: one leaves a core to the audio process."""
    view_port: int | None = None
    """Port of the web page with the live picture (None: no picture; 0: any free port)."""
    window: bool = False
    """Also show the picture in a window (glfw; needs a display)."""


@dataclass
class _Listening:
    """The ear and everything tied to its sample rate; swapped as one piece."""

    name: str
    ear: Ear
    resampler: Resampler
    history: np.ndarray  # recent samples at the ear's rate, for per-frame audio features
    fed: int = 0  # samples fed to the ear so far
    frames: int = 0  # frames it has produced


@dataclass
class _Recording:
    """Frames being collected for an embedding fit."""

    ear: str
    layer: str
    dims: int
    wanted: int
    req: Request | None
    frames: list[np.ndarray] = field(default_factory=list)


class Engine:
    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        torch.set_num_threads(config.threads)
        self.osc = OscServer(config.host, config.port, self.handle)
        self.osc.route = self.reply_address
        self.streams = Streams(self.osc.send)
        self.audio = AudioEngine(config.audio, config.source)
        self.listening = self._prepare(config.ear)
        self.selection = Selection(self.listening.ear.layers[0].name)
        self.top: tuple[int, float] = (5, 0.1)
        self.embedding: Embedding | None = None
        self._recording: _Recording | None = None
        self._staged: tuple[_Listening, Request | None] | None = None
        self._stage_lock = threading.Lock()
        self._reply_to: dict[Address, Address] = {}
        self._running = False
        self._worker: threading.Thread | None = None
        self.recent = Ring(int(10 * config.audio.sample_rate), 1)
        """The last 10 s of input at the audio rate (``recent.latest(n)``; ``recent.written`` counts samples)."""
        self.latest: dict[str, np.ndarray] = {}
        """The newest frame of every layer (for views)."""
        self.worker_busy = 0.0
        self.skipped = 0
        """Input samples the worker dropped to catch up with real time."""
        self.max_backlog = config.audio.sample_rate // 2
        self._cpu_mark = (time.perf_counter(), time.process_time(), 0.0)
        self.xrun_monitor: Any = None
        self.display: Display | None = None
        self.sonifier = Sonifier(
            self, recent=self.recent, output=self.audio.output, set_mix=self.audio.set_mix,
            sample_rate=config.audio.sample_rate, block=config.audio.block,
        )

    @property
    def ear(self) -> Ear:
        """The listening ear (what the sonifier reads)."""
        return self.listening.ear

    @property
    def name(self) -> str:
        """The listening ear's name."""
        return self.listening.name

    # ------------------------------------------------------------ life cycle

    def _prepare(self, name: str) -> _Listening:
        ear = registry.load(name)
        return _Listening(
            name, ear, Resampler(self.config.audio.sample_rate, ear.sample_rate), np.zeros(0, np.float32)
        )

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()  # a half-started server must not leave processes or shared memory behind
            raise

    def _start(self) -> None:
        self.audio.start()
        if self.config.audio.backend == "jack":
            from .jack import XrunMonitor

            try:
                self.xrun_monitor = XrunMonitor()
            except Exception as exc:  # counting xruns is a nicety; the server runs without it
                log.warning("cannot count JACK xruns: %s", exc)
        self._running = True
        self._worker = threading.Thread(target=self._work, name="ear-worker", daemon=True)
        self._worker.start()
        self.sonifier.start()
        if self.config.view_port is not None:
            from .display import Display

            self.display = Display(self, host=self.config.host, port=self.config.view_port, window=self.config.window)
            self.display.start()
        self.osc.start()
        log.info("listening for OSC on %s:%d", *self.osc.address)

    def stop(self) -> None:
        self._running = False
        self.sonifier.stop()
        if self._worker is not None:
            self._worker.join(5.0)
        self.osc.stop()
        if self.display is not None:
            self.display.stop()
        if self.xrun_monitor is not None:
            self.xrun_monitor.close()
        self.audio.stop()
        self.recent.close()

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ OSC

    def reply_address(self, sender: Address) -> Address:
        return self._reply_to.get(sender, sender)

    def send(self, to: Address, address: str, *args: object) -> None:
        try:
            self.osc.send(message(address, *args), to)
        except OSError as exc:
            log.warning("cannot reply to %s:%d: %s", *to, exc)

    def handle(self, item: Incoming) -> None:
        """Dispatch one message through the command table (patterns may match several)."""
        reply_to = self.reply_address(item.sender)
        if is_pattern(item.address):
            try:
                regex = pattern(item.address)
            except ValueError as exc:
                self.fail(reply_to, item.address, f"bad address pattern: {exc}")
                return
            matched = [c for c in commands.COMMANDS if regex.match(c.address)]
        else:
            command = commands.BY_ADDRESS.get(item.address)
            matched = [command] if command else []
        if not matched:
            self.fail(reply_to, item.address, "unknown command (the README's OSC reference lists them)")
            return
        for command in matched:
            req = Request(command.address, item.sender, reply_to)
            try:
                args = command.coerce(item.args)
                result = command.handler(self, req, *args)
            except EarsightError as exc:
                self.fail(reply_to, command.address, str(exc))
                continue
            if result is commands.DEFERRED:
                continue
            replies = result or [("/ear/done", [command.address])]
            for address, values in replies:
                self.send(reply_to, address, *values)

    def fail(self, to: Address, address: str, reason: str) -> None:
        log.warning("fail %s: %s", address, reason)
        self.send(to, "/ear/fail", address, reason)

    # ------------------------------------------------------------ what commands do

    def notify(self, sender: Address, port: int | None, fmt: str, bundled: bool) -> None:
        if port is not None and not 0 < port < 65536:
            raise BadRequest(f"port must be in 1-65535, got {port}")
        target = (sender[0], port) if port else sender
        old = self._reply_to.get(sender)
        if old is not None and old != target and old in self.streams.subscribers:
            self.streams.unsubscribe(old)
        self.streams.subscribe(target, fmt, bundled)
        self._reply_to[sender] = target

    def _subscriber(self, sender: Address, port: int | None) -> Address:
        if port is None:
            return self.reply_address(sender)
        if not 0 < port < 65536:
            raise BadRequest(f"port must be in 1-65535, got {port}")
        return (sender[0], port)

    def unnotify(self, sender: Address, port: int | None = None) -> None:
        self.streams.unsubscribe(self._subscriber(sender, port))
        if port is None:
            self._reply_to.pop(sender, None)

    def set_stream(self, sender: Address, name: str, rate: float, port: int | None = None) -> None:
        spec = STREAMS.get(name)
        if spec is None:
            raise NotFound(f"unknown stream {name!r} (streams: {', '.join(STREAMS)})")
        if rate < 0:
            raise BadRequest(f"rate must be >= 0, got {rate:g}")
        reason = spec.check(self.listening.ear)
        if rate > 0 and reason:
            raise BadRequest(reason)
        target = self._subscriber(sender, port)
        if target not in self.streams.subscribers:
            self.streams.subscribe(target)
        self.streams.set_rate(target, name, min(rate, self.listening.ear.frame_rate))

    def select(self, layer: str, channels: Sequence[int]) -> None:
        spec = self.listening.ear.layer(layer)
        bad = [c for c in channels if not 0 <= c < spec.channels]
        if bad:
            raise BadRequest(f"layer {layer} has channels 0-{spec.channels - 1}; no channel {bad[0]}")
        self.selection = Selection(layer, tuple(dict.fromkeys(channels)))
        if self.display is not None:
            self.display.select(layer, list(self.selection.channels))

    def view(self) -> Display:
        if self.display is None:
            raise BadRequest("no view: start the server with --view-port")
        return self.display

    def set_input(self, kind: str, name: object, value: float | None) -> None:
        if kind == "test":
            if not isinstance(name, str):
                raise BadRequest("usage: /ear/input test <sine|clicks|noise|sweep> [value]")
            self.audio.set_source(Source("test", name, value or 0.0))
        elif kind == "file":
            if not isinstance(name, str):
                raise BadRequest("usage: /ear/input file <path>")
            self.audio.set_source(Source("file", name))
        else:
            if name is not None:
                raise BadRequest(f"/ear/input {kind} takes no further arguments")
            self.audio.set_source(Source(kind))

    def set_top(self, count: int, threshold: float) -> None:
        if count < 1 or not 0.0 <= threshold <= 1.0:
            raise BadRequest("count must be >= 1 and threshold in [0, 1]")
        self.top = (count, threshold)

    def load_ear(self, name: str, req: Request | None = None) -> None:
        """Prepare ``name`` in a thread; the worker swaps it in; /ear/done follows."""
        if name not in registry.names():
            raise NotFound(f"unknown ear {name!r} (ears: {', '.join(registry.names())})")

        def prepare() -> None:
            try:
                listening = self._prepare(name)
            except Exception as exc:  # any failure to build an ear becomes a /ear/fail
                log.exception("loading ear %s", name)
                if req is not None:
                    self.fail(req.reply_to, req.address, f"cannot load {name}: {type(exc).__name__}: {exc}")
                return
            with self._stage_lock:
                self._staged = (listening, req)
            if not self._running and req is None:
                self._swap()

        if req is None:
            prepare()
        else:
            threading.Thread(target=prepare, name=f"load-{name}", daemon=True).start()

    def _swap(self) -> None:
        with self._stage_lock:
            staged, self._staged = self._staged, None
        if staged is None:
            return
        listening, req = staged
        ear = listening.ear
        if self.selection.layer not in ear.layer_names:
            self.selection = Selection(ear.layers[0].name)
        for name, spec in STREAMS.items():
            if spec.check(ear):
                self.streams.clear_stream(name)
        self.listening = listening
        self.latest = {}
        if self.embedding is not None and self.embedding.layer not in ear.layer_names:
            self.embedding = None
        if req is not None:
            self.send(req.reply_to, "/ear/done", req.address, listening.name)

    def fit_embedding(self, layer: str, seconds: float, dims: int, req: Request | None = None) -> None:
        """Collect ``seconds`` of ``layer``'s frames from now on, then fit the ``embed`` stream's PCA."""
        self.listening.ear.layer(layer)
        if not 0.5 <= seconds <= 120.0:
            raise BadRequest(f"seconds must be in [0.5, 120], got {seconds:g}")
        if not 1 <= dims <= MAX_EMBED_DIMS:
            raise BadRequest(f"dims must be in [1, {MAX_EMBED_DIMS}], got {dims}")
        frames = max(2, int(seconds * self.listening.ear.frame_rate))
        self._recording = _Recording(self.listening.name, layer, dims, frames, req)

    def _record(self, frame: dict[str, np.ndarray]) -> None:
        rec = self._recording
        assert rec is not None
        if rec.ear != self.listening.name or rec.layer not in frame:
            self._recording = None
            if rec.req is not None:
                self.fail(rec.req.reply_to, rec.req.address, "the ear changed while fitting")
            return
        rec.frames.append(frame[rec.layer].copy())
        if len(rec.frames) < rec.wanted:
            return
        self._recording = None
        try:
            self.embedding = fit_embedding(rec.layer, np.stack(rec.frames), rec.dims)
        except EarsightError as exc:
            if rec.req is not None:
                self.fail(rec.req.reply_to, rec.req.address, str(exc))
            return
        if rec.req is not None:
            self.send(rec.req.reply_to, "/ear/done", rec.req.address, rec.layer, self.embedding.dims)

    def model_info(self) -> list[object]:
        ear = self.listening.ear
        out: list[object] = [
            "name", self.listening.name, "sample_rate", ear.sample_rate, "frame_rate", float(ear.frame_rate),
            "latency_ms", float(self.latency_ms()), "labels", len(ear.labels or ()), "layers", len(ear.layers),
        ]
        for layer in ear.layers:
            out += [layer.name, layer.channels, layer.size]
        return out

    def latency_ms(self) -> float:
        """Declared latency, input to features: audio block + resampler + ear (+ half a hop of framing)."""
        lis = self.listening
        sr = self.config.audio.sample_rate
        ear = lis.ear
        return 1000.0 * (
            self.audio.latency / sr + (lis.resampler.latency + ear.latency + ear.hop / 2) / ear.sample_rate
        )

    def status(self) -> dict[str, object]:
        stats = self.audio.stats()
        now, cpu = time.perf_counter(), time.process_time()
        wall0, cpu0, busy0 = self._cpu_mark
        self._cpu_mark = (now, cpu, self.worker_busy)
        elapsed = max(now - wall0, 1e-6)
        xruns = self.xrun_monitor.count if self.xrun_monitor is not None else stats["late_blocks"]
        return {
            "ear": self.listening.name,
            "backend": self.config.audio.backend,
            "input": self.audio.source.describe(),
            "sample_rate": self.config.audio.sample_rate,
            "block": self.config.audio.block,
            "frame_rate": float(self.listening.ear.frame_rate),
            "latency_ms": float(self.latency_ms()),
            "cpu": float(100.0 * (cpu - cpu0) / elapsed),
            "ear_load": float((self.worker_busy - busy0) / elapsed),
            "xruns": int(xruns),
            "late_blocks": stats["late_blocks"],
            "audio_restarts": stats["restarts"],
            "dropped": stats["input_dropped"] + stats["output_underruns"] + self.skipped,
            "lag_ms": float(1000.0 * self.audio.input.available() / self.config.audio.sample_rate),
            "frames": self.listening.frames,
            "subscribers": len(self.streams.subscribers),
            "received": self.osc.received,
            "malformed": self.osc.malformed,
        }

    # ------------------------------------------------------------ the ear worker

    def _work(self) -> None:
        self.audio.input.read()  # what queued up while starting is not live any more
        while self._running:
            if self._staged is not None:
                self._swap()
            backlog = self.audio.input.available()
            if backlog > self.max_backlog:
                # Far behind real time (an overloaded machine): stay live, drop the oldest audio.
                # The sonifiers still get it: they play the newest input, not the ear's.
                self.recent.write(self.audio.input.read(backlog - self.config.audio.block))
                self.skipped += backlog - self.config.audio.block
                log.warning("ear worker %.2f s behind: skipped ahead", backlog / self.config.audio.sample_rate)
            block = self.audio.input.read()
            if block.shape[0] == 0:
                if not self.audio.alive and self._running:
                    self._revive_audio()
                time.sleep(0.002)
                continue
            self.recent.write(block)
            arrived = time.time()
            started = time.perf_counter()
            try:
                self._listen(block[:, 0], arrived)
            except Exception:  # keep listening; a bug here must not silence the server
                log.exception("ear worker")
                time.sleep(0.1)
            self.worker_busy += time.perf_counter() - started

    def _revive_audio(self) -> None:
        """The audio process died (a crash in pyo or a device lost): log it and start a new one."""
        log.error("the audio process died; restarting it")
        try:
            self.audio.restart()
        except EarsightError as exc:
            log.error("cannot restart audio: %s; retrying in 2 s", exc)
            time.sleep(2.0)

    def _listen(self, samples: np.ndarray, arrived: float) -> None:
        lis = self.listening
        ear = lis.ear
        x = lis.resampler.process(samples)
        frames = ear.stream(x)
        n = next(iter(frames.values())).shape[0] if frames else 0
        lis.history = np.concatenate([lis.history, x])[-(x.shape[0] + ear.hop) :]
        start_of_history = lis.fed + x.shape[0] - lis.history.shape[0]
        lis.fed += x.shape[0]
        for j in range(n):
            index = lis.frames + j
            end = (index + 1) * ear.hop  # the frame's last sample, in ear samples since start
            frame = {name: values[j] for name, values in frames.items()}
            when = arrived - (lis.fed - end) / ear.sample_rate
            self._publish(ear, frame, lis.history[end - ear.hop - start_of_history : end - start_of_history], when)
        lis.frames += n

    def _publish(self, ear: Ear, frame: dict[str, np.ndarray], audio: np.ndarray, when: float) -> None:
        self.latest = frame
        if self._recording is not None:
            self._record(frame)
        wanted = self.streams.wanted(when)
        if not wanted:
            return
        ctx = FrameContext(ear, frame, audio, when, self.selection, self.top, self.embedding)
        values: dict[str, tuple[list[str], np.ndarray]] = {}
        for name in wanted:
            spec = STREAMS[name]
            if spec.check(ear):
                continue
            try:
                vals = spec.compute(ctx)
                values[name] = (spec.names(ear, self.selection)[: len(vals)], vals)
            except EarsightError as exc:
                log.warning("stream %s: %s", name, exc)
        self.streams.publish(when, values)
