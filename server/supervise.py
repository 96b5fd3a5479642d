"""Supervised threads: a service loop that dies is logged, counted and started again.

Every long-running thread of the server runs through :class:`Supervisor`. A loop returns when
its service stops; if it raises instead, the supervisor logs the traceback, counts a restart for
that thread (``/ear/status`` reports them) and runs it again after a short pause that doubles up
to two seconds while it keeps failing, so a fault that repeats cannot spin a core.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

FIRST_PAUSE = 0.05
LONGEST_PAUSE = 2.0
HEALTHY_AFTER = 10.0
"""A loop that ran this long before failing starts again without waiting."""
NICE_DREAM = 5
NICE_MATCH = 5
NICE_PICTURE = 10
"""Nice values of work that degrades on purpose when the machine is behind: the live dream and the
image match (a picture's bed comes a little later), then the picture (the display loop, Mesa's
rasterizer threads, the web server) first. The ear worker and the
OSC threads keep 0; the audio process runs real-time."""


def name_os_thread(name: str) -> None:
    """Give the calling thread ``name`` in the kernel too (``top -H``, ``ps -L``), cut to 15 bytes."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(15, name.encode()[:15] + b"\0", 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):  # not Linux: the Python name still shows in logs
        pass


def lower_priority(nice: int, tid: int | None = None) -> None:
    """Give a thread of this process (default: the calling one) the nice value ``nice``.

    Work that may degrade (the dream, the picture) runs nicer than the ear and the control path, so
    on a saturated machine the kernel gives the ear its share first. Linux keeps nice per thread;
    raising it needs no privilege. (Threads a library starts inherit their creator's value.)
    """
    try:
        os.setpriority(os.PRIO_PROCESS, tid if tid is not None else threading.get_native_id(), nice)
    except OSError as exc:  # another kernel: priorities are a refinement, not a requirement
        log.debug("cannot set nice %d: %s", nice, exc)


def os_threads(prefix: str) -> list[int]:
    """Ids of this process's threads whose kernel name starts with ``prefix``."""
    found = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                if f.read().startswith(prefix):
                    found.append(int(tid))
        except OSError:  # it ended meanwhile
            continue
    return found


class Supervisor:
    def __init__(self) -> None:
        self.restarts: dict[str, int] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def spawn(
        self, name: str, loop: Callable[[], None], running: Callable[[], bool], *, nice: int = 0
    ) -> threading.Thread:
        """Run ``loop`` in a daemon thread named ``name``; restart it when it raises while ``running()``.

        ``nice`` > 0 lowers the thread's CPU priority (see :func:`lower_priority`)."""

        def guard() -> None:
            name_os_thread(name)
            if nice:
                lower_priority(nice)
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
