"""Supervised threads: a service loop that dies is logged, counted and started again.

Every long-running thread of the server runs through :class:`Supervisor`. A loop returns when
its service stops; if it raises instead, the supervisor logs the traceback, counts a restart for
that thread (``/ear/status`` reports them) and runs it again after a short pause that doubles up
to two seconds while it keeps failing, so a fault that repeats cannot spin a core.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

FIRST_PAUSE = 0.05
LONGEST_PAUSE = 2.0
HEALTHY_AFTER = 10.0
"""A loop that ran this long before failing starts again without waiting."""


class Supervisor:
    def __init__(self) -> None:
        self.restarts: dict[str, int] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def spawn(self, name: str, loop: Callable[[], None], running: Callable[[], bool]) -> threading.Thread:
        """Run ``loop`` in a daemon thread named ``name``; restart it when it raises while ``running()``."""

        def guard() -> None:
            pause = FIRST_PAUSE
            while True:
                started = time.monotonic()
                try:
                    loop()
                    return
                except Exception as exc:  # whatever it was, the thread must come back
                    if not running():
                        return
                    with self._lock:
                        self.restarts[name] = self.restarts.get(name, 0) + 1
                    log.exception("thread %s died (%s); restarting it", name, type(exc).__name__)
                if time.monotonic() - started > HEALTHY_AFTER:
                    pause = FIRST_PAUSE
                time.sleep(pause)
                pause = min(2 * pause, LONGEST_PAUSE)
                if not running():
                    return

        thread = threading.Thread(target=guard, name=name, daemon=True)
        with self._lock:
            self.restarts.setdefault(name, 0)
            self._threads[name] = thread
        thread.start()
        return thread

    def alive(self) -> dict[str, bool]:
        with self._lock:
            return {name: t.is_alive() for name, t in self._threads.items()}

    def total_restarts(self) -> int:
        with self._lock:
            return sum(self.restarts.values())
