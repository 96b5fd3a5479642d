"""The ear worker: input ring → causal resampler → ear, hop by hop → frames to the state and the consumers.

A new ear is prepared off to the side (a loader thread) and swapped in by the worker between
hops, so the ear never sees a half-made state and no input is lost while it loads.

With several tracks (``--inputs N``) the ring has a column per track and each :class:`Track` has
its own ear, state and consumers. Tracks that listen with the same ear share its weights (a
:meth:`~earsight.ears.base.Ear.twin` each) and the hops that arrive together run as one batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .audio.ring import Ring
from .commands.base import Request
from .ears import registry
from .ears.base import Ear, batchable, process_together
from .errors import NotFound
from .resample import Resampler
from .stage import Chain
from .state import EarState
from .supervise import Supervisor

if TYPE_CHECKING:
    from .audio import AudioEngine

log = logging.getLogger(__name__)

FrameConsumer = Callable[[Ear, dict[str, np.ndarray], np.ndarray, float], None]
"""Called once per frame: the ear, its frame (layer -> activations), the hop of audio that
completed it (at the ear's rate), and the wall-clock time of the hop's last sample."""


MAX_BACKLOG = 2.0
"""Seconds of input the ear may fall behind before it skips ahead. A stall (a renderer being built,
a dream starting) is caught up instead: the backlog goes through the ear in batches, several times
faster than real time, late but whole. Only a machine that stays behind loses audio for the ear."""


@dataclass
class Pipeline:
    """The ear and everything tied to its sample rate; swapped as one piece."""

    name: str
    ear: Ear
    resampler: Resampler
    history: np.ndarray  # recent samples at the ear's rate, for per-frame audio features
    fed: int = 0  # samples fed to the ear so far
    frames: int = 0  # frames it has produced


def prepare(name: str, sample_rate: int, like: Ear | None = None) -> Pipeline:
    """A pipeline for the ear ``name``; ``like``: an ear of that name already loaded, whose weights
    the new pipeline shares (a twin) instead of loading them again."""
    ear = like.twin() if like is not None else registry.load(name)
    ear.family()  # made now, not by the worker while another thread reads the ear's attributes
    return Pipeline(name, ear, Resampler(sample_rate, ear.sample_rate), np.zeros(0, np.float32))


class Track:
    """One input's listening: its ear (swapped between hops), its state and its frame consumers.
    The ``ear`` service of its commands (``/ear/<track>/model/load``, ...)."""

    def __init__(self, number: int, state: EarState, pipeline: Pipeline, consumers: list[FrameConsumer],
                 listener: Listener) -> None:
        self.number = number
        self.state = state
        self.pipeline = pipeline
        self.consumers = consumers
        self.listener = listener
        self._staged: tuple[Pipeline, Request | None] | None = None
        self._stage_lock = threading.Lock()

    @property
    def frames(self) -> int:
        return self.pipeline.frames

    # ------------------------------------------------------------ what commands ask

    def names(self) -> list[str]:
        return registry.names()

    def load(self, name: str, req: Request | None = None) -> None:
        """Prepare ``name`` in a thread; the worker swaps it in between hops; ``req`` is answered then."""
        if name not in registry.names():
            raise NotFound(f"unknown ear {name!r} (ears: {', '.join(registry.names())})")
        like = self.listener.loaded(name)

        def run() -> None:
            try:
                pipeline = prepare(name, self.listener.sample_rate, like)
            except Exception as exc:  # any failure to build an ear becomes a /ear/fail
                log.exception("loading ear %s", name)
                if req is not None:
                    req.fail(f"cannot load {name}: {type(exc).__name__}: {exc}")
                return
            with self._stage_lock:
                self._staged = (pipeline, req)
            if not self.listener.running:
                self.swap()

        if req is None:
            run()
        else:
            threading.Thread(target=run, name=f"load-{name}", daemon=True).start()

    def settings(self) -> dict[str, list[object]]:
        """The listening ear as the command that loads it (for scenes)."""
        return {"/ear/model/load": [self.state.name]}

    def info(self) -> list[object]:
        name, ear = self.pipeline.name, self.pipeline.ear
        out: list[object] = [
            "name", name, "sample_rate", ear.sample_rate, "frame_rate", float(ear.frame_rate),
            "latency_ms", float(self.latency_ms()), "labels", len(ear.labels or ()), "layers", len(ear.layers),
        ]
        for layer in ear.layers:
            out += [layer.name, layer.channels, layer.size]
        return out

    def latency_ms(self) -> float:
        """Declared latency, input to features: audio block + resampler + ear (+ half a hop of framing)."""
        p, ear, listener = self.pipeline, self.pipeline.ear, self.listener
        chain = Chain(p.resampler, ear)  # resampler -> ear, latencies added as cached_conv does
        return 1000.0 * (listener.audio.latency / listener.sample_rate + chain.seconds + ear.hop / 2 / ear.sample_rate)

    def pitch_latency_ms(self) -> float | None:
        """Declared latency of the ``pitch`` stream: from the arrival of the block that holds a note's
        onset (at its first sample) to the first confident pitch message, on average.

        The resampler's delay and the ear's :attr:`~earsight.ears.base.Ear.pitch_latency`, less half
        a block (a frame completes when the block holding its last sample arrives, which on average
        brings that sample half a block before its time), plus the worker's measured delivery time.
        """
        p, ear, listener = self.pipeline, self.pipeline.ear, self.listener
        if ear.pitch_latency is None:
            return None
        at_ear = (p.resampler.latency + ear.pitch_latency) / ear.sample_rate
        return 1000.0 * (at_ear - listener.block / 2 / listener.sample_rate + listener.delivery)

    # ------------------------------------------------------------ the worker's side

    def swap(self) -> None:
        with self._stage_lock:
            staged, self._staged = self._staged, None
        if staged is None:
            return
        pipeline, req = staged
        self.pipeline = pipeline
        self.state.set_ear(pipeline.name, pipeline.ear)
        if req is not None:
            req.done(pipeline.name)

    def deliver(self, x: np.ndarray, frames: dict[str, np.ndarray], arrived: float) -> int:
        """Hand each frame that ``x`` (this hop's samples at the ear's rate) completed to the state
        and the consumers; how many."""
        p = self.pipeline
        ear = p.ear
        n = next(iter(frames.values())).shape[0] if frames else 0
        p.history = np.concatenate([p.history, x])[-(x.shape[0] + ear.hop) :]
        start_of_history = p.fed + x.shape[0] - p.history.shape[0]
        p.fed += x.shape[0]
        for j in range(n):
            end = (p.frames + j + 1) * ear.hop  # the frame's last sample, in ear samples since start
            frame = {name: values[j] for name, values in frames.items()}
            when = arrived - (p.fed - end) / ear.sample_rate
            audio = p.history[end - ear.hop - start_of_history : end - start_of_history]
            self.state.publish(frame)
            for consume in self.consumers:
                try:
                    consume(ear, frame, audio, when)
                except Exception:  # one consumer's bug must not starve the others
                    log.exception("frame consumer %r", consume)
        p.frames += n
        return n


class Listener:
    """The ear worker: one thread for every track (the ring's columns, in order)."""

    def __init__(self, state: EarState, pipeline: Pipeline, audio: AudioEngine, recent: Ring,
                 consumers: list[FrameConsumer]) -> None:
        """Track 1 listens with ``pipeline``; ``recent`` receives its every input block (the sonifier
        reads the input from it). More tracks: :meth:`add_track`."""
        self.audio = audio
        self.recent = recent
        self.sample_rate = audio.config.sample_rate
        self.block = audio.config.block
        self.max_backlog = int(MAX_BACKLOG * self.sample_rate)
        self.busy = 0.0
        """Seconds the worker spent listening (the ears' load)."""
        self.skipped = 0
        """Input samples dropped to catch up with real time."""
        self.delivery = 0.0
        """Seconds from a block's arrival to its frames' streams sent (a running mean, over blocks
        that complete frames): what the worker adds to the ear's own latency."""
        self.batched = 0
        """Hops that ran in one batch with another track's."""
        self.tracks: list[Track] = []
        self.add_track(state, pipeline, consumers)
        self.running = False
        self._thread: threading.Thread | None = None

    def add_track(self, state: EarState, pipeline: Pipeline, consumers: list[FrameConsumer]) -> Track:
        track = Track(len(self.tracks) + 1, state, pipeline, consumers, self)
        self.tracks.append(track)
        return track

    def loaded(self, name: str) -> Ear | None:
        """An ear of this name some track listens with (a new track's twin shares its weights)."""
        return next((t.pipeline.ear for t in self.tracks if t.pipeline.name == name), None)

    # track 1, as the server and its status know it
    @property
    def first(self) -> Track:
        return self.tracks[0]

    @property
    def pipeline(self) -> Pipeline:
        return self.first.pipeline

    @property
    def consumers(self) -> list[FrameConsumer]:
        return self.first.consumers

    @property
    def frames(self) -> int:
        return self.first.frames

    def latency_ms(self) -> float:
        return self.first.latency_ms()

    def pitch_latency_ms(self) -> float | None:
        return self.first.pitch_latency_ms()

    def lag_ms(self) -> float:
        """Input waiting for the ear."""
        return float(1000.0 * self.audio.input.available() / self.sample_rate)

    # ------------------------------------------------------------ life cycle

    def start(self, supervisor: Supervisor | None = None) -> None:
        self.running = True
        self._thread = (supervisor or Supervisor()).spawn("ear-worker", self._work, lambda: self.running)

    def stop(self) -> None:
        self.running = False
        if self._thread is not None:
            self._thread.join(5.0)

    # ------------------------------------------------------------ the worker

    def _work(self) -> None:
        self.audio.input.read()  # what queued up while starting (or restarting) is not live any more
        while self.running:
            for track in self.tracks:
                if track._staged is not None:
                    track.swap()
            backlog = self.audio.input.available()
            if backlog > self.max_backlog:
                # Far behind real time (an overloaded machine): stay live, drop the oldest audio.
                # The sonifier still gets it: it plays the newest input, not the ear's.
                self.recent.write(self.audio.input.read(backlog - self.block)[:, :1])
                self.skipped += backlog - self.block
                log.warning("ear worker %.2f s behind: skipped ahead", backlog / self.sample_rate)
            block = self.audio.input.read()
            if block.shape[0] == 0:
                if self.running and (not self.audio.alive or self.audio.stalled()):
                    self.audio.recover()
                self.audio.wait_input(0.1)
                continue
            self.recent.write(block[:, :1])
            arrived = time.time()
            started = time.perf_counter()
            try:
                made = self._listen(block, arrived)
            except Exception:  # keep listening; a bug here must not silence the server
                log.exception("ear worker")
                time.sleep(0.1)
                made = 0
            spent = time.perf_counter() - started
            self.busy += spent
            if made:
                self.delivery += 0.05 * (spent - self.delivery)  # a mean over the last ~20 such blocks

    def _listen(self, block: np.ndarray, arrived: float) -> int:
        """Feed one block (a column per track) to the ears, twins' hops in one batch; hand each frame
        to its track; how many frames."""
        tracks = self.tracks[: block.shape[1]]
        xs = [t.pipeline.resampler.process(block[:, k]) for k, t in enumerate(tracks)]
        groups: dict[object, list[int]] = {}
        for k, t in enumerate(tracks):
            groups.setdefault(t.pipeline.ear.family(), []).append(k)
        made = 0
        for members in groups.values():
            ears = [tracks[k].pipeline.ear for k in members]
            outs = process_together(ears, [xs[k] for k in members])
            self.batched += len(members) if batchable(ears) else 0
            for k, frames in zip(members, outs, strict=True):
                made += tracks[k].deliver(xs[k], frames, arrived)
        return made
