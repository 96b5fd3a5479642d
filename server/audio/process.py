"""The audio engine: pyo in a process of its own, joined to the rest by shared-memory rings.

pyo's audio thread takes the GIL every block, so any Python work beside it (an ear, an OSC
flood) causes xruns. Here the audio process runs nothing but pyo and short per-block hooks
(:mod:`earsight.audio.graph`); this module is the server's handle on it: start, restart,
settings through shared memory, sources and subscriptions through a pipe.

Backends: "jack" (an existing JACK server; see :mod:`earsight.audio.jack`), "portaudio" (a sound
card), "manual" (pyo's manual server, clocked by this process in real time, or as fast as
possible with ``realtime=False``). Never pyo's default ``Server()`` without a device: it crashes.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing as mp
import select
import socket
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ..errors import BadRequest, EarsightError
from . import io
from .blockstreams import BlockSubscription
from .graph import (
    BACKENDS,
    BED_SECONDS,
    BED_SLOTS,
    CONTROL_DEFAULTS,
    CONTROL_FIELDS,
    STAT_FIELDS,
    AudioConfig,
    audio_main,
)
from .ring import Ring
from .shared import Controls, Counters, SharedArray
from .sources import Source, demo_files, validate_source

log = logging.getLogger(__name__)

DEMO = Source()
MAX_INPUTS = 16

class AudioEngine:
    """Parent-side handle of the audio process. Thread-safe: control calls are serialised."""

    def __init__(self, config: AudioConfig, source: Source = DEMO, send_socket: socket.socket | None = None) -> None:
        """``send_socket``: the socket block-rate streams are sent from (the server's OSC socket)."""
        if config.backend not in BACKENDS:
            raise BadRequest(f"unknown audio backend {config.backend!r} (backends: {', '.join(BACKENDS)})")
        self.config = config
        self.send_socket = send_socket
        self.source = validate_source(source)
        capacity = int(config.ring_seconds * config.sample_rate)
        if not 1 <= config.inputs <= MAX_INPUTS:
            raise BadRequest(f"inputs must be 1-{MAX_INPUTS}, got {config.inputs}")
        self.input = Ring(capacity, config.inputs)
        """Input, a column per track (track 1: the source after gain, mono), written by the audio
        process; read by the ear worker."""
        self.output = Ring(capacity, 2)
        """Stereo sonified audio, written by the sonifier; mixed into the output."""
        self.monitor = Ring(capacity, 2)
        """What the server plays (the final stereo mix), for meters, tests and click checks."""
        self._stats = Counters(STAT_FIELDS)
        self._controls = Controls(CONTROL_FIELDS)
        for field in CONTROL_FIELDS:
            self._controls.set(field, CONTROL_DEFAULTS[field])
        self._block_streams: list[BlockSubscription] = []
        # The audio process sends a byte here after each block of input: the ear worker waits on it.
        self._wake, self._wake_send = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._wake.setblocking(False)
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._process: mp.process.BaseProcess | None = None
        self.restarts = 0
        self.realtime = "unknown"
        """Whether the thread that computes the blocks has real-time scheduling, and if not why."""
        self.state = "stopped"
        """running, waiting for JACK (it went away), or stopped: /ear/status says which."""
        self._last_blocks = -1
        self._last_change = time.monotonic()
        self._bed_changes: collections.deque[float] = collections.deque(maxlen=BED_SLOTS - 1)
        """When each of the last bed changes ends its fade (monotonic seconds)."""

    @property
    def latency(self) -> int:
        """Samples from audio in to the ring: the block the callback copies one block late."""
        return self.config.block

    def start(self, timeout: float = 20.0) -> None:
        ctx = mp.get_context("spawn")  # fork would copy torch's threads and locks
        parent, child = ctx.Pipe()
        self._process = ctx.Process(
            target=audio_main,
            args=(
                self.config, Source("silence"), self.input.spec(), self.output.spec(), self.monitor.spec(),
                self._stats.spec(), self._controls.spec(), child, self.send_socket, self._wake_send,
            ),
            name="earsight-audio",
            daemon=True,
        )
        self._process.start()
        self._conn = parent
        try:
            booted = self._await(timeout, "start")
        except EarsightError:
            self._process.kill()
            raise
        self.realtime = str(booted.get("realtime", "unknown"))
        (log.info if self.realtime.startswith("yes") else log.warning)("audio real-time scheduling: %s", self.realtime)
        self.set_source(self.source)
        if self._block_streams:  # a restarted process gets its subscribers back
            self._call("streams", self._block_streams)
        self._last_blocks, self._last_change = -1, time.monotonic()
        self.state = "running"  # a restarted process reads gain and mix from the shared settings

    def restart(self) -> None:
        """Start a new audio process after the old one died; the rings and settings carry over."""
        with self._lock:
            if self._process is not None:
                self._process.join(1.0)
                if self._process.is_alive():
                    self._process.kill()
                    self._process.join(2.0)
            self._process = None
        self.restarts += 1
        self.start()

    def stalled(self, seconds: float = 1.0) -> bool:
        """No block for ``seconds``: the process lives but its backend stopped clocking it (JACK went away)."""
        blocks, now = self._stats.get("blocks"), time.monotonic()
        if blocks != self._last_blocks:
            self._last_blocks, self._last_change = blocks, now
            return False
        return now - self._last_change > seconds

    def recover(self) -> None:
        """The audio process died or stalled: start a new one once its backend is there again.

        A JACK server that was killed leaves pyo's process alive and silent; when JACK is back
        (a user or a session manager restarts it) a new process connects to it.
        """
        if self.config.backend == "jack":
            from . import jack

            if not jack.running():
                if self.state != "waiting for JACK":
                    log.error("the JACK server is gone: waiting for it to come back")
                    self.state = "waiting for JACK"
                time.sleep(0.5)
                return
        log.error("the audio process %s; starting a new one", "died" if not self.alive else "stalled")
        try:
            self.restart()
        except EarsightError as exc:
            log.error("cannot restart audio: %s; retrying in 2 s", exc)
            time.sleep(2.0)
            return
        log.info("audio is back (%s)", self.config.backend)

    def _await(self, timeout: float, what: str) -> Any:
        assert self._conn is not None
        if not self._conn.poll(timeout):
            raise EarsightError(f"audio process did not answer {what} within {timeout:g} s")
        status, payload = self._conn.recv()
        if status != "ok":
            raise EarsightError(f"audio: {payload}")
        return payload

    def _call(self, *message: object, timeout: float = 10.0) -> Any:
        with self._lock:
            if self._conn is None or self._process is None or not self._process.is_alive():
                raise EarsightError("audio process is not running")
            self._conn.send(message)
            return self._await(timeout, str(message[0]))

    def set_source(self, source: Source) -> Source:
        source = validate_source(source)
        if source.kind not in ("file", "demo"):
            self._call("source", source, None)
        else:
            # Files are decoded here, not in the audio process, where it would hold the GIL.
            sr = self.config.sample_rate
            files = [source.name] if source.kind == "file" else demo_files()
            data = np.concatenate([_stereo(io.read(f, sr)[0]) for f in files])
            block = SharedArray.of(data)
            try:
                self._call("source", source, block.spec(), timeout=60.0)
            finally:
                block.close()
        self.source = source
        return source

    def set_bed(self, data: np.ndarray | None, fade: float) -> None:
        """Crossfade the ambient bed over ``fade`` seconds to ``data`` (:data:`BED_SECONDS` of stereo
        at the server's rate, looped) or, with None, to silence. Changes faster than the audio
        process has silent slots for wait here (the caller's thread), so none lands on a slot still
        heard: no click however fast they come."""
        if not (np.isfinite(fade) and 0.0 <= fade <= 60.0):
            raise BadRequest(f"fade must be in [0, 60] s, got {fade:g}")
        if data is None:
            self._call("bed", None, fade)
            self._bed_changes.append(time.monotonic() + fade)
            return
        frames = int(BED_SECONDS * self.config.sample_rate)
        if data.shape != (frames, 2):
            raise BadRequest(f"a bed is {BED_SECONDS:g} s of stereo: ({frames}, 2) frames, got {data.shape}")
        # A slot is silent once the fade-out that began at the change after its bed has ended; of
        # BED_SLOTS slots one is then silent if the change BED_SLOTS - 1 changes ago has ended its fade.
        if len(self._bed_changes) == self._bed_changes.maxlen:
            time.sleep(max(0.0, self._bed_changes[0] - time.monotonic()))
        block = SharedArray.of(np.ascontiguousarray(data, dtype=np.float32))
        try:
            self._call("bed", block.spec(), fade, timeout=60.0)
        finally:
            block.close()
        self._bed_changes.append(time.monotonic() + fade)

    def set_bed_level(self, level: float, into_input: bool) -> None:
        """The bed's gain, and whether the ear hears it (part of the input) or only the output does."""
        if not (np.isfinite(level) and 0.0 <= level <= 4.0):
            raise BadRequest(f"level must be in [0, 4], got {level:g}")
        self._controls.set("bed", float(level))
        self._controls.set("bed_in", 1.0 if into_input else 0.0)

    def wait_input(self, timeout: float) -> None:
        """Until the audio process has written input (or ``timeout`` s): no polling, no fixed sleep."""
        ready, _, _ = select.select([self._wake], [], [], timeout)
        if ready:
            try:
                while self._wake.recv(64):
                    pass
            except (BlockingIOError, OSError):
                pass

    def set_block_streams(self, table: list[BlockSubscription]) -> None:
        """Who receives the block-rate streams (level, onset, envelope): sent from the audio process."""
        self._block_streams = list(table)
        self._call("streams", self._block_streams)

    def set_onset_threshold(self, db: float) -> None:
        if not (np.isfinite(db) and 0.0 < db <= 60.0):
            raise BadRequest(f"onset threshold must be in (0, 60] dB, got {db:g}")
        self._controls.set("onset_threshold", float(db))

    def set_gain(self, gain: float) -> None:
        if not (np.isfinite(gain) and 0.0 <= gain <= 16.0):
            raise BadRequest(f"gain must be in [0, 16], got {gain:g}")
        self._controls.set("gain", float(gain))

    def set_mix(self, dry: float, wet: float) -> None:
        for name, v in (("dry", dry), ("wet", wet)):
            if not (np.isfinite(v) and 0.0 <= v <= 4.0):
                raise BadRequest(f"{name} must be in [0, 4], got {v:g}")
        self._controls.set("dry", float(dry))
        self._controls.set("wet", float(wet))

    @property
    def gain(self) -> float:
        return self._controls.get("gain")

    @property
    def dry(self) -> float:
        return self._controls.get("dry")

    @property
    def wet(self) -> float:
        return self._controls.get("wet")

    def settings(self) -> dict[str, list[object]]:
        """The levels as the commands that set them (for scenes)."""
        return {"/ear/input/gain": [self.gain], "/ear/output/mix": [self.dry, self.wet],
                "/ear/onset/threshold": [self._controls.get("onset_threshold")]}

    def stats(self) -> dict[str, int]:
        out = self._stats.snapshot()
        out["input_dropped"] = self.input.dropped
        out["restarts"] = self.restarts
        return out

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def stop(self) -> None:
        if self._process is not None:
            if self._process.is_alive() and self._conn is not None:
                try:
                    with self._lock:
                        self._conn.send(("stop",))
                except OSError:
                    pass
                self._process.join(5.0)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(2.0)
            self._process = None
        self.state = "stopped"
        self._wake.close()
        self._wake_send.close()
        for block in (self.input, self.output, self.monitor, self._stats, self._controls):
            try:
                block.close()
            except FileNotFoundError:
                pass

    def __enter__(self) -> AudioEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stereo(data: np.ndarray) -> np.ndarray:
    if data.shape[1] == 1:
        return np.repeat(data, 2, axis=1)
    return data[:, :2]
