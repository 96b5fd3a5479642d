"""Inside the audio process: the pyo graph and its per-block hooks, which copy and never wait.

One hook runs before pyo computes a block and copies between pyo's tables and the shared rings:
the input (after gain) to the ear, the sonified audio from the sonifier, the final mix to the
monitor. Another runs after the block is computed and sends the block-rate streams
(:mod:`earsight.audio.blockstreams`). Settings (gain, mix, onset threshold) are read from shared
memory once per block; sources and subscriptions arrive over the control pipe.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ..errors import EarsightError
from ..memory import freeze_heap
from .blockstreams import BlockStreams
from .realtime import ask_realtime
from .ring import Ring
from .shared import Controls, Counters, SharedArray
from .sources import Source

log = logging.getLogger(__name__)

BACKENDS = ("jack", "portaudio", "manual")
# Counters the audio process publishes (int64, shared memory).
STAT_FIELDS = ("blocks", "late_blocks", "output_underruns", "source_changes")
# Settings the server writes and the callback applies (float64, shared memory): no message, no wait.
CONTROL_FIELDS = ("gain", "dry", "wet", "onset_threshold", "bed", "bed_in")
CONTROL_DEFAULTS = {"gain": 1.0, "dry": 1.0, "wet": 1.0, "onset_threshold": 9.0, "bed": 1.0, "bed_in": 0.0}


@dataclass(frozen=True)
class AudioConfig:
    backend: str = "manual"
    sample_rate: int = 48000
    block: int = 256
    realtime: bool = True
    """Manual backend only: pace blocks at the audio clock (True) or run as fast as possible."""
    jack_name: str = "earsight"
    ring_seconds: float = 4.0
    inputs: int = 1
    """Tracks the ear hears: the first is the source (the device's first input among them); track k
    is the device's input k (JACK: the port input_k), unmixed, ungained."""


def audio_main(
    config: AudioConfig,
    source: Source,
    in_spec: tuple[int, int, str],
    out_spec: tuple[int, int, str],
    monitor_spec: tuple[int, int, str],
    stats_spec: tuple[tuple[str, ...], str],
    controls_spec: tuple[tuple[str, ...], str],
    conn: Connection,
    send_socket: socket.socket | None = None,
    wake: socket.socket | None = None,
) -> None:
    """The audio process. ``send_socket``: the server's OSC socket, so block-rate streams come from
    the port clients talk to (SuperCollider matches replies by it). ``wake``: a byte is sent on it
    whenever input is written, so the ear worker sleeps until then."""
    os.environ.setdefault("PYO_GUI_WX", "0")
    try:
        graph = _Graph(config, source, Ring(*in_spec), Ring(*out_spec), Ring(*monitor_spec), Counters(*stats_spec),
                       Controls(*controls_spec), send_socket, wake)
    except Exception as exc:  # report any failure to boot to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ok", {"backend": config.backend, "realtime": ask_realtime(config.backend, config.realtime)}))
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
        self, config: AudioConfig, source: Source, inp: Ring, out: Ring, monitor: Ring, stats: Counters,
        controls: Controls, send_socket: socket.socket | None = None, wake: socket.socket | None = None,
    ) -> None:
        import pyo

        self.pyo = pyo
        self.config = config
        self.inp, self.out, self.monitor, self.stats, self.controls = inp, out, monitor, stats, controls
        sr, bs = config.sample_rate, config.block
        duplex = 0 if config.backend == "manual" else 1
        self.server = pyo.Server(
            sr=sr, nchnls=2, ichnls=max(1, config.inputs), buffersize=bs, duplex=duplex, audio=config.backend,
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
        # The sound card's input exists from the start, so pyo computes it before everything that
        # reads it (objects run in the order they were made): a device source adds no block.
        self.device = pyo.Mix(pyo.Input(chnl=0), voices=2) if duplex else None
        self.tracks = [pyo.Input(chnl=k) if duplex else pyo.Sig(0.0) for k in range(1, config.inputs)]
        self.fader = pyo.InputFader(self._keep(self._make(source, None)))
        # The ambient bed (earsight.match): slots of looping tables, each with a gain ramp; a new
        # bed fades in on a silent slot while the others fade out, each from where its ramp is
        # now, so a change during a crossfade is as smooth as any.
        self.bed_slots = [_BedSlot(pyo, int(BED_SECONDS * sr)) for _ in range(BED_SLOTS)]
        self.applied = controls.values()
        gain, dry, wet, _, bed, bed_in = (float(v) for v in self.applied)
        self.gain = pyo.SigTo(gain, time=0.02, init=gain)
        self.dry = pyo.SigTo(dry, time=0.02, init=dry)
        self.wet = pyo.SigTo(wet, time=0.02, init=wet)
        self.bed = pyo.SigTo(bed, time=0.05, init=bed)
        self.bed_in = pyo.SigTo(bed_in, time=0.05, init=bed_in)
        bed_out = pyo.Mix([slot.out for slot in self.bed_slots], voices=2) * self.bed
        # bed_in 1: the bed is part of what the ear hears (and reaches the output as dry input);
        # 0: it only reaches the output, and the ear never hears it.
        stereo = self.fader * self.gain + bed_out * self.bed_in
        mono = pyo.Mix(stereo, voices=1, mul=0.5)
        self.in_tables = [pyo.DataTable(1 << 15) for _ in range(1 + len(self.tracks))]
        self.in_bufs = [np.asarray(t.getBuffer()) for t in self.in_tables]
        # Made together, the fills write the same positions: track 1's stands for all.
        self.fills = [pyo.TableFill(src, t) for src, t in zip([mono, *self.tracks], self.in_tables, strict=True)]
        self.fill = self.fills[0]
        n_out = 1 << 15
        self.out_tables = [pyo.DataTable(n_out) for _ in range(2)]
        self.out_bufs = [np.asarray(t.getBuffer()) for t in self.out_tables]
        self.count = pyo.Count(pyo.Trig().play(), min=0, max=n_out)
        sonified = [pyo.TableIndex(t, self.count) for t in self.out_tables]
        self.mix = (stereo * self.dry + pyo.Mix(sonified, voices=2) * self.wet + bed_out * (1 - self.bed_in)).out()
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
        # Made last, so it runs after this block's input has been written to the table.
        self.blocks = BlockStreams(sr, bs, send_socket)
        self.wake = wake
        if wake is not None:
            wake.setblocking(False)
        self.blocks.onsets.threshold = controls.get("onset_threshold")
        self.after_block = pyo.TrigFunc(pyo.Metro(time=bs / sr).play(), self._after_block)
        self.server.setCallback(self.callback)
        freeze_heap()  # before the callback runs: a full collection would stall it (earsight.memory)
        self.server.start()

    def _after_block(self) -> None:
        """Once per block, after pyo computed it: this block's input to the ear and the streams, now."""
        pos = self.fill.getCurrentPos()
        if pos != self.last_in:
            new = np.stack([_since(buf, self.last_in, pos) for buf in self.in_bufs], axis=1)  # (n, tracks)
            self.last_in = pos
            self.inp.write(new)
            if self.wake is not None:
                try:
                    self.wake.send(b"\0")  # the ear worker waits on this, not on a timer
                except OSError:  # full (the worker is behind and will see the ring anyway)
                    pass
            now, bs = time.time(), self.config.block
            for i in range(0, new.shape[0] - bs + 1, bs):
                self.blocks.on_block(new[i : i + bs, 0], now - (new.shape[0] - i - bs) / self.config.sample_rate)
        pos = self.mon_fill[0].getCurrentPos()
        if pos != self.last_mon:
            self.monitor.write(np.stack([_since(buf, self.last_mon, pos) for buf in self.mon_bufs], axis=1))
            self.last_mon = pos

    def callback(self) -> None:
        """Once per block, before pyo computes it: settings in, the sonified audio out. Never waits."""
        bs = self.config.block
        now = time.perf_counter()
        if self.last_time and now - self.last_time > 2.5 * bs / self.config.sample_rate and self.config.realtime:
            self.stats.add("late_blocks")
        self.last_time = now
        settings = self.controls.values()
        if (settings != self.applied).any():
            self.gain.value, self.dry.value, self.wet.value, threshold, self.bed.value, self.bed_in.value = (
                float(v) for v in settings)
            self.blocks.onsets.threshold = threshold
            self.applied = settings
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
            table = self._table(audio)
            obj = pyo.TableRead(table, freq=table.getRate(), loop=1).play()
            self.objects = [table, obj]
            return obj
        if source.kind == "device":
            self.objects = []
            return self.device if self.device is not None else pyo.Sig(0.0)
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

    def _set_bed(self, audio: tuple[tuple[int, ...], str, str] | None, fade: float) -> None:
        """Fade every slot out and, unless ``audio`` is None, the bed in shared memory in, on the
        quietest slot (silent, as the parent paces changes: :meth:`AudioEngine.set_bed`)."""
        quietest = min(self.bed_slots, key=lambda s: float(s.ramp.get()))
        for slot in self.bed_slots:
            slot.fade(0.0, fade)
        if audio is not None:
            slot = quietest
            block = SharedArray(*audio)
            try:
                slot.load(block.array)
            finally:
                block.close()
            slot.fade(1.0, fade)

    def _table(self, audio: tuple[tuple[int, ...], str, str]) -> Any:
        """A stereo pyo table filled from shared memory, in slices, letting the audio thread in between."""
        block = SharedArray(*audio)
        try:
            data = block.array  # (frames, 2)
            n = data.shape[0]
            table = self.pyo.DataTable(n, chnls=2)
            _fill([np.asarray(table.getBuffer(ch)) for ch in range(2)], data, self.config.sample_rate // 2)
            del data
        finally:
            block.close()
        return table

    def handle(self, message: tuple[Any, ...]) -> bool:
        """Apply one control message from the parent; False ends the process."""
        kind = message[0]
        if kind == "stop":
            return False
        try:
            if kind == "streams":
                self.blocks.set(message[1])
            elif kind == "source":
                self.fader.setInput(self._keep(self._make(message[1], message[2])), fadetime=0.02)
                self.stats.add("source_changes")
            elif kind == "bed":
                self._set_bed(message[1], max(0.01, float(message[2])))
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


BED_SLOTS = 4
"""Beds that can sound at once (fading in, playing, fading out)."""
BED_SECONDS = 20.0
"""Every bed is a loop of this length. Its slots' tables are made once, when the graph is built:
making a 20 s stereo table holds the GIL for about 7 ms, longer than a block, which the audio
thread needs for its callback (a late block per bed on the manual backend, measured); filling one
takes slices of 50 us."""


class _BedSlot:
    """One looping stereo table and its gain: ``g`` ramps linearly, the amplitude is ``sqrt(g)``, so
    two complementary ramps keep the power of uncorrelated beds constant (an equal-power fade)."""

    def __init__(self, pyo: Any, frames: int) -> None:
        self.table = pyo.DataTable(frames, chnls=2)  # silence until a bed is loaded
        self.bufs = [np.asarray(self.table.getBuffer(ch)) for ch in range(2)]
        self.reader = pyo.TableRead(self.table, freq=self.table.getRate(), loop=1).play()
        self.ramp = pyo.SigTo(0.0, time=1.0, init=0.0)
        self.out = self.reader * pyo.Sqrt(self.ramp)

    def load(self, data: np.ndarray) -> None:
        """Copy a bed in (the slot is silent), in slices, letting the audio thread in between."""
        n = self.bufs[0].shape[0]
        if data.shape != (n, 2):
            raise EarsightError(f"a bed must be ({n}, 2) frames, got {data.shape}")
        _fill(self.bufs, data, 24000)

    def fade(self, target: float, seconds: float) -> None:
        self.ramp.setTime(seconds)
        self.ramp.setValue(target)


def _fill(bufs: list[np.ndarray], data: np.ndarray, step: int) -> None:
    """Copy ``data`` (frames, channels) into a pyo table's channel buffers ``step`` frames at a time,
    letting the audio thread have the GIL between slices."""
    for start in range(0, data.shape[0], step):
        for ch, buf in enumerate(bufs):
            buf[start : start + step] = data[start : start + step, ch]
        time.sleep(0)


def _since(buf: np.ndarray, last: int, pos: int) -> np.ndarray:
    """What a pyo TableFill wrote into the circular ``buf`` from ``last`` up to ``pos``."""
    return buf[last:pos] if pos > last else np.concatenate([buf[last:], buf[:pos]])
