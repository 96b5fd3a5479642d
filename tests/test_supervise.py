"""Supervised threads come back after a fault, are counted, and stay down once their service stops."""

from __future__ import annotations

import threading
import time

from earsight.supervise import Supervisor


def test_a_loop_that_raises_is_restarted_and_counted() -> None:
    runs: list[int] = []
    done = threading.Event()

    def loop() -> None:
        runs.append(1)
        if len(runs) <= 2:
            raise RuntimeError("injected fault")
        done.set()

    sup = Supervisor()
    thread = sup.spawn("worker", loop, lambda: True)
    assert done.wait(5.0)
    thread.join(5.0)
    assert len(runs) == 3 and sup.restarts == {"worker": 2} and sup.total_restarts() == 2


def test_a_stopped_service_is_not_restarted() -> None:
    running = threading.Event()
    running.set()
    calls: list[float] = []

    def loop() -> None:
        calls.append(time.monotonic())
        running.clear()  # the service stops, then its loop fails on the way out
        raise RuntimeError("fault while stopping")

    sup = Supervisor()
    sup.spawn("worker", loop, running.is_set).join(5.0)
    assert len(calls) == 1 and sup.restarts == {"worker": 0} and sup.alive() == {"worker": False}


def test_a_loop_that_keeps_failing_backs_off() -> None:
    calls: list[float] = []
    stop = threading.Event()

    def loop() -> None:
        calls.append(time.monotonic())
        raise RuntimeError("always")

    sup = Supervisor()
    thread = sup.spawn("worker", loop, lambda: not stop.is_set())
    time.sleep(1.0)
    stop.set()
    thread.join(5.0)
    # pauses of 0.05, 0.1, 0.2, 0.4 s ...: a handful of runs in a second, not thousands
    assert 3 <= len(calls) <= 8, len(calls)
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    assert all(gap >= 0.05 * 2**i for i, gap in enumerate(gaps))  # sleep waits at least that long
