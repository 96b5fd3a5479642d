"""The audio engine: pyo in a process of its own, joined to the rest by shared-memory rings.

pyo's audio thread takes the GIL every block, so any Python work beside it (an ear, an OSC
flood) causes xruns. Here the audio process runs nothing but pyo and one short callback per
block that copies the block into a ring (input) and out of another (sonified output). The
callback never waits: it takes what is there and counts what was missing.

Backends: "jack" (an existing JACK server; see :mod:`earsight.audio.jack`), "portaudio" (a sound
card), "manual" (pyo's manual server, clocked by this process in real time, or as fast as
possible with ``realtime=False``). Never pyo's default ``Server()`` without a device: it crashes.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing as mp
import os
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ..errors import BadRequest, EarsightError
from . import io
from .ring import Ring
from .shared import Counters, SharedArray
from .sources import Source, demo_files, validate_source

log = logging.getLogger(__name__)

BACKENDS = ("jack", "portaudio", "manual")

# Counters the audio process publishes (int64, shared memory).
STAT_FIELDS = ("blocks", "late_blocks", "output_underruns", "source_changes")
DEMO = Source()


@dataclass(frozen=True)
class AudioConfig:
    backend: str = "manual"
    sample_rate: int = 48000
    block: int = 256
    realtime: bool = True
    """Manual backend only: pace blocks at the audio clock (True) or run as fast as possible."""
    jack_name: str = "earsight"
    ring_seconds: float = 4.0


class AudioEngine:
    """Parent-side handle of the audio process. Thread-safe: control calls are serialised."""

    def __init__(self, config: AudioConfig, source: Source = DEMO) -> None:
        if config.backend not in BACKENDS:
            raise BadRequest(f"unknown audio backend {config.backend!r} (backends: {', '.join(BACKENDS)})")
        self.config = config
        self.source = validate_source(source)
        capacity = int(config.ring_seconds * config.sample_rate)
        self.input = Ring(capacity, 1)
        """Mono input after gain, written by the audio process; read by the ear worker."""
        self.output = Ring(capacity, 2)
        """Stereo sonified audio, written by the sonifier; mixed into the output."""
        self.monitor = Ring(capacity, 2)
        """What the server plays (the final stereo mix), for meters, tests and click checks."""
        self._stats = Counters(STAT_FIELDS)
        self._lock = threading.Lock()
        self._conn: Connection | None = None
        self._process: mp.process.BaseProcess | None = None
        self.gain = 1.0
        self.dry = 1.0
        self.wet = 1.0
        self.restarts = 0
        self.state = "stopped"
        """running, waiting for JACK (it went away), or stopped: /ear/status says which."""
        self._last_blocks = -1
        self._last_change = time.monotonic()

    @property
    def latency(self) -> int:
        """Samples from audio in to the ring: the block the callback copies one block late."""
        return self.config.block

    def start(self, timeout: float = 20.0) -> None:
        ctx = mp.get_context("spawn")  # fork would copy torch's threads and locks
        parent, child = ctx.Pipe()
        self._process = ctx.Process(
            target=_audio_main,
            args=(
                self.config, Source("silence"), self.input.spec(), self.output.spec(), self.monitor.spec(),
                self._stats.spec(), child,
            ),
            name="earsight-audio",
            daemon=True,
        )
        self._process.start()
        self._conn = parent
        try:
            self._await(timeout, "start")
        except EarsightError:
            self._process.kill()
            raise
        self.set_source(self.source)
        self._last_blocks, self._last_change = -1, time.monotonic()
        self.state = "running"
        # pyo keeps its gain and mix objects in the process: a restarted one needs them again
        if self.gain != 1.0:
            self._call("gain", self.gain)
        if (self.dry, self.wet) != (1.0, 1.0):
            self._call("mix", self.dry, self.wet)

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

    def set_gain(self, gain: float) -> None:
        if not (np.isfinite(gain) and 0.0 <= gain <= 16.0):
            raise BadRequest(f"gain must be in [0, 16], got {gain:g}")
        self._call("gain", float(gain))
        self.gain = float(gain)

    def set_mix(self, dry: float, wet: float) -> None:
        for name, v in (("dry", dry), ("wet", wet)):
            if not (np.isfinite(v) and 0.0 <= v <= 4.0):
                raise BadRequest(f"{name} must be in [0, 4], got {v:g}")
        self._call("mix", float(dry), float(wet))
        self.dry, self.wet = float(dry), float(wet)

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
        for block in (self.input, self.output, self.monitor, self._stats):
            try:
                block.close()
            except FileNotFoundError:
                pass

    def __enter__(self) -> AudioEngine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------- the audio process


def _audio_main(
    config: AudioConfig,
    source: Source,
    in_spec: tuple[int, int, str],
    out_spec: tuple[int, int, str],
    monitor_spec: tuple[int, int, str],
    stats_spec: tuple[tuple[str, ...], str],
    conn: Connection,
) -> None:
    os.environ.setdefault("PYO_GUI_WX", "0")
    try:
        graph = _Graph(config, source, Ring(*in_spec), Ring(*out_spec), Ring(*monitor_spec), Counters(*stats_spec))
    except Exception as exc:  # report any failure to boot to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ok", {"backend": config.backend}))
    try:
        if config.backend == "manual":
            graph.run_manual(conn)
        else:
            while graph.handle(conn.recv()):
                conn.send(graph.conn_reply)
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        graph.stop()


class _Graph:
    """The pyo graph and the per-block callback (runs only inside the audio process)."""

    def __init__(
        self, config: AudioConfig, source: Source, inp: Ring, out: Ring, monitor: Ring, stats: Counters
    ) -> None:
        import pyo

        self.pyo = pyo
        self.config = config
        self.inp, self.out, self.monitor, self.stats = inp, out, monitor, stats
        sr, bs = config.sample_rate, config.block
        duplex = 0 if config.backend == "manual" else 1
        self.server = pyo.Server(
            sr=sr, nchnls=2, ichnls=1, buffersize=bs, duplex=duplex, audio=config.backend,
            jackname=config.jack_name,
        )
        self.server.setVerbosity(1)  # errors only
        self.server.deactivateMidi()
        self.server.boot()
        if not self.server.getIsBooted():
            raise EarsightError(f"pyo could not boot the {config.backend} backend")
        # pyo frees an object with its last Python reference, even while a crossfade still reads
        # it (a crash): keep the sources of the last few changes alive.
        self.objects: list[Any] = []
        self.generations: collections.deque[list[Any]] = collections.deque(maxlen=4)
        self.fader = pyo.InputFader(self._keep(self._make(source, None)))
        self.gain = pyo.SigTo(1.0, time=0.02)
        self.dry = pyo.SigTo(1.0, time=0.02)
        self.wet = pyo.SigTo(1.0, time=0.02)
        stereo = self.fader * self.gain
        mono = pyo.Mix(stereo, voices=1, mul=0.5)
        self.in_table = pyo.DataTable(1 << 15)
        self.in_buf = np.asarray(self.in_table.getBuffer())
        self.fill = pyo.TableFill(mono, self.in_table)
        n_out = 1 << 15
        self.out_tables = [pyo.DataTable(n_out) for _ in range(2)]
        self.out_bufs = [np.asarray(t.getBuffer()) for t in self.out_tables]
        self.count = pyo.Count(pyo.Trig().play(), min=0, max=n_out)
        wet = [pyo.TableIndex(t, self.count) for t in self.out_tables]
        self.mix = (stereo * self.dry + pyo.Mix(wet, voices=2) * self.wet).out()
        self.mon_tables = [pyo.DataTable(1 << 15) for _ in range(2)]
        self.mon_bufs = [np.asarray(t.getBuffer()) for t in self.mon_tables]
        self.mon_fill = [pyo.TableFill(self.mix[ch], t) for ch, t in enumerate(self.mon_tables)]
        self.last_mon = 0
        self.block = np.zeros((bs, 2), np.float32)
        self.last_in = 0
        self.last_time = 0.0
        self.last_got = 0
        self.out_pos = -1
        self.conn_reply: tuple[str, Any] = ("ok", None)
        self.server.setCallback(self.callback)
        self.server.start()

    def callback(self) -> None:
        """Once per block, before pyo computes it. Copies only; never waits."""
        bs = self.config.block
        now = time.perf_counter()
        if self.last_time and now - self.last_time > 2.5 * bs / self.config.sample_rate and self.config.realtime:
            self.stats.add("late_blocks")
        self.last_time = now
        n_in = self.in_buf.shape[0]
        pos = self.fill.getCurrentPos()
        if pos != self.last_in:
            if pos > self.last_in:
                self.inp.write(self.in_buf[self.last_in : pos])
            else:
                self.inp.write(np.concatenate([self.in_buf[self.last_in :], self.in_buf[:pos]]))
            self.last_in = pos
        pos = self.mon_fill[0].getCurrentPos()
        if pos != self.last_mon:
            idx = np.arange(self.last_mon, pos if pos > self.last_mon else pos + n_in) % n_in
            self.monitor.write(np.stack([self.mon_bufs[0][idx], self.mon_bufs[1][idx]], axis=1))
            self.last_mon = pos
        got = self.out.read_into(self.block)
        if got < bs and (got > 0 or self.last_got == bs):  # the sonified audio ran out mid-stream
            self.stats.add("output_underruns")
        self.last_got = got
        n_out = self.out_bufs[0].shape[0]
        if self.out_pos < 0:  # first block: where the table reader is; after that, one block per callback
            self.out_pos = int(self.count.get()) + bs
        start, self.out_pos = self.out_pos % n_out, (self.out_pos + bs) % n_out
        idx = (start + np.arange(bs)) % n_out
        for ch in range(2):
            self.out_bufs[ch][idx] = self.block[:, ch]
        self.stats.add("blocks")

    def _keep(self, obj: Any) -> Any:
        self.generations.append([*self.objects, obj])
        return obj

    def _make(self, source: Source, audio: tuple[tuple[int, ...], str, str] | None) -> Any:
        pyo = self.pyo
        if source.kind in ("file", "demo"):
            assert audio is not None, "file audio arrives decoded, in shared memory"
            block = SharedArray(*audio)
            try:
                data = block.array  # (frames, 2)
                n = data.shape[0]
                table = pyo.DataTable(n, chnls=2)
                bufs = [np.asarray(table.getBuffer(ch)) for ch in range(2)]
                step = self.config.sample_rate // 2
                for start in range(0, n, step):  # in slices, letting the audio thread in between
                    for ch in range(2):
                        bufs[ch][start : start + step] = data[start : start + step, ch]
                    time.sleep(0)
                del bufs, data
            finally:
                block.close()
            obj = pyo.TableRead(table, freq=table.getRate(), loop=1).play()
            self.objects = [table, obj]
            return obj
        if source.kind == "device":
            obj = pyo.Input(chnl=0)
            self.objects = [obj]
            return pyo.Mix(obj, voices=2)
        if source.kind == "test":
            v = source.value
            if source.name == "sine":
                self.objects = [pyo.Sine(freq=v, mul=0.5)]
            elif source.name == "clicks":
                self.objects = [pyo.Metro(time=1.0 / v).play()]  # a one-sample impulse per tick
            elif source.name == "noise":
                self.objects = [pyo.Noise(mul=v)]
            else:  # sweep
                ramp = pyo.Phasor(freq=1.0 / v)
                freq = pyo.Scale(ramp, 0, 1, 50, 8000, exp=4)
                self.objects = [ramp, freq, pyo.Sine(freq=freq, mul=0.5)]
            return pyo.Mix(self.objects[-1], voices=2)
        silence = pyo.Sig(0.0)
        self.objects = [silence]
        return pyo.Mix(silence, voices=2)

    def handle(self, message: tuple[Any, ...]) -> bool:
        """Apply one control message from the parent; False ends the process."""
        kind = message[0]
        if kind == "stop":
            return False
        try:
            if kind == "source":
                self.fader.setInput(self._keep(self._make(message[1], message[2])), fadetime=0.02)
                self.stats.add("source_changes")
            elif kind == "gain":
                self.gain.value = message[1]
            elif kind == "mix":
                self.dry.value, self.wet.value = message[1], message[2]
            else:
                raise EarsightError(f"unknown audio message {kind!r}")
        except Exception as exc:  # answer the parent; the graph keeps playing
            self.conn_reply = ("error", f"{type(exc).__name__}: {exc}")
        else:
            self.conn_reply = ("ok", None)
        return True

    def run_manual(self, conn: Connection) -> None:
        period = self.config.block / self.config.sample_rate
        deadline = time.perf_counter()
        while True:
            while conn.poll():
                message = conn.recv()
                if not self.handle(message):
                    return
                conn.send(self.conn_reply)
            self.server.process()
            if self.config.realtime:
                deadline += period
                delay = deadline - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -0.5:  # far behind (suspended?): resynchronise the clock
                    deadline = time.perf_counter()

    def stop(self) -> None:
        try:
            self.server.stop()
            time.sleep(0.05)
            self.server.shutdown()
        except Exception as exc:  # shutting down: log, nothing else to do
            log.warning("audio shutdown: %s", exc)


def _stereo(data: np.ndarray) -> np.ndarray:
    if data.shape[1] == 1:
        return np.repeat(data, 2, axis=1)
    return data[:, :2]
