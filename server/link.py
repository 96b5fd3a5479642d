"""Ableton Link: the band's tempo and beat, shared with Live, LinkClock, Sonic Pi and the rest.

Off until ``/ear/link 1``: Link finds its peers by multicast on every network interface. The
binding (aalink: Link's C++ through pybind11) needs a running asyncio loop, so the session lives
on a supervised thread that runs one; that thread also ticks the ``beat`` stream, and the rest
of the server reads the session's clock from any thread (Link's state is captured atomically).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .commands.base import at_once
from .errors import BadRequest, EarsightError
from .features import CLOCK_RATE

if TYPE_CHECKING:
    from .supervise import Supervisor

log = logging.getLogger(__name__)

TICK = 1.0 / CLOCK_RATE
"""Seconds between ticks of the beat stream."""
IDLE = 0.25
"""Seconds between the thread's looks while Link is off (how soon ticks begin after /ear/link 1)."""
EARLY = 0.001
"""A boundary closer than this many seconds counts as now (not the one after it)."""


def wait_beats(beat: float, phase: float, quantum: float, quantise: str) -> float:
    """Beats from ``beat`` (``phase`` into a bar of ``quantum`` beats) to the next boundary ``quantise`` names."""
    at_once(quantise)  # refuses a name it does not know
    if quantise == "now":
        return 0.0
    if quantise == "beat":
        return (math.ceil(beat) - beat) % 1.0
    return (quantum - phase) % quantum


class LinkClock:
    """The ``link`` service. ``on_tick(when, [beat, phase, tempo])`` is called every :data:`TICK`
    while Link is on (the ``beat`` stream)."""

    def __init__(self, on_tick: Callable[[float, np.ndarray], None] | None = None, tempo: float = 120.0) -> None:
        self.on_tick = on_tick
        self.quantum = 4.0
        self._tempo = tempo
        self._session: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._running = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ life cycle

    def start(self, supervisor: Supervisor) -> None:
        self._running = True
        self._thread = supervisor.spawn("link", self._run, lambda: self._running)
        self._ready.wait(5.0)

    def stop(self) -> None:
        self._running = False  # the loop's next tick returns
        session, self._session = self._session, None
        if session is not None:
            session.enabled = False  # leave the session: peers see us go at once
            # Destroyed here, not while the interpreter shuts down: Link's threads abort the
            # process ("terminate called without an active exception") when torn down that late.
            del session
        if self._thread is not None:
            self._thread.join(2.0)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._ready.set()
        try:
            loop.run_until_complete(self._ticks())
        finally:
            loop.close()

    async def _ticks(self) -> None:
        while self._running:
            # Off (the default), the thread naps: 100 wake-ups a second would take the GIL from the
            # OSC thread and the ear for nothing.
            await asyncio.sleep(TICK if self.enabled else IDLE)
            if self.on_tick is not None and self.enabled:
                state = self.now()
                if state is not None:
                    self.on_tick(time.time(), np.array(state[:3], np.float32))

    # ------------------------------------------------------------ control

    @property
    def enabled(self) -> bool:
        return self._session is not None and bool(self._session.enabled)

    def set_enabled(self, on: bool) -> None:
        if on and self._session is None:
            self._session = self._create()
        if self._session is not None:
            self._session.enabled = bool(on)
            log.info("Link %s", "on" if on else "off")

    def _create(self) -> Any:
        try:
            import aalink
        except ImportError as exc:
            raise EarsightError(f"Ableton Link is not available: {exc} (pip install aalink)") from exc
        loop = self._loop
        if loop is None or not loop.is_running():
            raise EarsightError("the Link thread is not running")

        async def create() -> Any:  # aalink wants the loop it schedules on to be running
            session = aalink.Link(self._tempo)
            session.quantum = self.quantum
            return session

        return asyncio.run_coroutine_threadsafe(create(), loop).result(5.0)

    def set_quantum(self, beats: float) -> None:
        if not 1.0 <= beats <= 64.0:
            raise BadRequest(f"quantum must be 1-64 beats, got {beats:g}")
        self.quantum = float(beats)
        if self._session is not None:
            self._session.quantum = self.quantum

    def set_tempo(self, bpm: float) -> None:
        if not 20.0 <= bpm <= 999.0:
            raise BadRequest(f"tempo must be 20-999 BPM, got {bpm:g}")
        self._tempo = float(bpm)
        if self._session is not None:
            self._session.tempo = self._tempo  # every peer follows

    # ------------------------------------------------------------ the clock

    def now(self) -> tuple[float, float, float, int] | None:
        """(beat, phase in the bar, tempo, peers) now, or None while Link is off."""
        session = self._session
        if session is None or not session.enabled:
            return None
        return float(session.beat), float(session.phase), float(session.tempo), int(session.num_peers)

    def until(self, quantise: str) -> float:
        """Seconds to the next beat or bar (0 for now, and while Link is off: there is no beat to wait for)."""
        state = self.now()
        if state is None:
            return at_once(quantise)
        beat, phase, tempo, _ = state
        seconds = wait_beats(beat, phase, self.quantum, quantise) * 60.0 / tempo
        return 0.0 if seconds < EARLY else seconds

    def stats(self) -> dict[str, object]:
        state = self.now()
        beat, phase, tempo, peers = state if state is not None else (0.0, 0.0, self._tempo, 0)
        return {"link": int(state is not None), "tempo": tempo, "beat": beat, "phase": phase, "peers": peers,
                "quantum": self.quantum}
