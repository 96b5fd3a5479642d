"""The ear worker: input ring → causal resampler → ear, hop by hop → frames to the state and the consumers.

A new ear is prepared off to the side (a loader thread) and swapped in by the worker between
hops, so the ear never sees a half-made state and no input is lost while it loads.
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
from .ears.base import Ear
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


def prepare(name: str, sample_rate: int) -> Pipeline:
    ear = registry.load(name)
    return Pipeline(name, ear, Resampler(sample_rate, ear.sample_rate), np.zeros(0, np.float32))


class Listener:
    def __init__(self, state: EarState, pipeline: Pipeline, audio: AudioEngine, recent: Ring,
                 consumers: list[FrameConsumer]) -> None:
        """``recent`` receives every input block (the sonifier reads the input from it)."""
        self.state = state
        self.pipeline = pipeline
        self.audio = audio
        self.recent = recent
        self.consumers = consumers
        self.sample_rate = audio.config.sample_rate
        self.block = audio.config.block
        self.max_backlog = int(MAX_BACKLOG * self.sample_rate)
        self.busy = 0.0
        """Seconds the worker spent listening (the ear's load)."""
        self.skipped = 0
        """Input samples dropped to catch up with real time."""
        self.delivery = 0.0
        """Seconds from a block's arrival to its frames' streams sent (a running mean, over blocks
        that complete frames): what the worker adds to the ear's own latency."""
        self._staged: tuple[Pipeline, Request | None] | None = None
        self._stage_lock = threading.Lock()
        self._running = False
        self._thread: threading.Thread | None = None

    @property
    def frames(self) -> int:
        return self.pipeline.frames

    # ------------------------------------------------------------ life cycle

    def start(self, supervisor: Supervisor | None = None) -> None:
        self._running = True
        self._thread = (supervisor or Supervisor()).spawn("ear-worker", self._work, lambda: self._running)

    def stop(self) -> None:
        self._running = False
        if self._thread is not None:
            self._thread.join(5.0)

    # ------------------------------------------------------------ what commands ask

    def names(self) -> list[str]:
        return registry.names()

    def load(self, name: str, req: Request | None = None) -> None:
        """Prepare ``name`` in a thread; the worker swaps it in between hops; ``req`` is answered then."""
        if name not in registry.names():
            raise NotFound(f"unknown ear {name!r} (ears: {', '.join(registry.names())})")

        def run() -> None:
            try:
                pipeline = prepare(name, self.sample_rate)
            except Exception as exc:  # any failure to build an ear becomes a /ear/fail
                log.exception("loading ear %s", name)
                if req is not None:
                    req.fail(f"cannot load {name}: {type(exc).__name__}: {exc}")
                return
            with self._stage_lock:
                self._staged = (pipeline, req)
            if not self._running:
                self._swap()

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
        p, ear = self.pipeline, self.pipeline.ear
        chain = Chain(p.resampler, ear)  # resampler -> ear, latencies added as cached_conv does
        return 1000.0 * (self.audio.latency / self.sample_rate + chain.seconds + ear.hop / 2 / ear.sample_rate)

    def pitch_latency_ms(self) -> float | None:
        """Declared latency of the ``pitch`` stream: from the arrival of the block that holds a note's
        onset (at its first sample) to the first confident pitch message, on average.

        The resampler's delay and the ear's :attr:`~earsight.ears.base.Ear.pitch_latency`, less half
        a block (a frame completes when the block holding its last sample arrives, which on average
        brings that sample half a block before its time), plus the worker's measured delivery time.
        """
        p, ear = self.pipeline, self.pipeline.ear
        if ear.pitch_latency is None:
            return None
        at_ear = (p.resampler.latency + ear.pitch_latency) / ear.sample_rate
        return 1000.0 * (at_ear - self.block / 2 / self.sample_rate + self.delivery)

    def lag_ms(self) -> float:
        """Input waiting for the ear."""
        return float(1000.0 * self.audio.input.available() / self.sample_rate)

    # ------------------------------------------------------------ the worker

    def _swap(self) -> None:
        with self._stage_lock:
            staged, self._staged = self._staged, None
        if staged is None:
            return
        pipeline, req = staged
        self.pipeline = pipeline
        self.state.set_ear(pipeline.name, pipeline.ear)
        if req is not None:
            req.done(pipeline.name)

    def _work(self) -> None:
        self.audio.input.read()  # what queued up while starting (or restarting) is not live any more
        while self._running:
            if self._staged is not None:
                self._swap()
            backlog = self.audio.input.available()
            if backlog > self.max_backlog:
                # Far behind real time (an overloaded machine): stay live, drop the oldest audio.
                # The sonifier still gets it: it plays the newest input, not the ear's.
                self.recent.write(self.audio.input.read(backlog - self.block))
                self.skipped += backlog - self.block
                log.warning("ear worker %.2f s behind: skipped ahead", backlog / self.sample_rate)
            block = self.audio.input.read()
            if block.shape[0] == 0:
                if self._running and (not self.audio.alive or self.audio.stalled()):
                    self.audio.recover()
                self.audio.wait_input(0.1)
                continue
            self.recent.write(block)
            arrived = time.time()
            started = time.perf_counter()
            try:
                made = self._listen(block[:, 0], arrived)
            except Exception:  # keep listening; a bug here must not silence the server
                log.exception("ear worker")
                time.sleep(0.1)
                made = 0
            spent = time.perf_counter() - started
            self.busy += spent
            if made:
                self.delivery += 0.05 * (spent - self.delivery)  # a mean over the last ~20 such blocks

    def _listen(self, samples: np.ndarray, arrived: float) -> int:
        """Feed one block to the ear; hand each frame it completes to the consumers; how many."""
        p = self.pipeline
        ear = p.ear
        x = p.resampler.process(samples)
        frames = ear.process(x)
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
