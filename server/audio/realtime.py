"""Real-time scheduling for the thread that computes the audio blocks: asked for, and reported."""

from __future__ import annotations

import os
import time

REALTIME_PRIORITY = 10
"""SCHED_FIFO priority of the manual backend's block loop (JACK gives its own thread one)."""


def ask_realtime(backend: str, paced: bool = True) -> str:
    """Ask for real-time scheduling of the thread that computes the blocks; say whether it has it.

    JACK's client thread gets it from libjack when jackd runs real-time; the manual backend's
    loop is this process's main thread. Without the right (root, or an rtprio limit) the audio
    runs at normal priority and says so: other work on the machine can then make it late.
    """
    if backend == "manual":
        if not paced:
            return "no: the manual backend runs as fast as it can (realtime=False)"
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
        except (PermissionError, OSError) as exc:
            return f"no: {exc.strerror or exc} (run as root or raise the rtprio limit)"
        return f"yes (SCHED_FIFO {REALTIME_PRIORITY})"
    deadline = time.monotonic() + 1.0
    while True:  # JACK's thread may start a moment after the server
        for tid in (int(t) for t in os.listdir("/proc/self/task")):
            try:
                if os.sched_getscheduler(tid) in (os.SCHED_FIFO, os.SCHED_RR):
                    return f"yes ({backend}'s thread, priority {os.sched_getparam(tid).sched_priority})"
            except OSError:  # the thread ended meanwhile
                continue
        if time.monotonic() > deadline:
            return f"no: {backend} gave its thread no real-time priority (is jackd running with -R?)"
        time.sleep(0.05)
