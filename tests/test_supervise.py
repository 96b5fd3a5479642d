"""Supervised threads come back after a fault, are counted, and stay down once their service stops."""

from __future__ import annotations

import os
import threading
import time

from earsight.supervise import Supervisor, os_threads


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


def _kernel_view(tid: int) -> tuple[str, int]:
    """The kernel's name and nice value of a thread of this process."""
    with open(f"/proc/self/task/{tid}/comm") as f:
        name = f.read().strip()
    with open(f"/proc/self/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return name, int(fields[16])  # field 19 of stat: nice


def test_threads_carry_their_names_and_nice_values_into_the_kernel() -> None:
    sup = Supervisor()
    seen: dict[str, int] = {}
    done = threading.Event()

    def loop(key: str) -> None:
        seen[key] = threading.get_native_id()
        done.wait(5)

    sup.spawn("plain-worker", lambda: loop("plain"), lambda: not done.is_set())
    sup.spawn("nice-worker", lambda: loop("nice"), lambda: not done.is_set(), nice=7)
    deadline = time.monotonic() + 5
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    base = os.getpriority(os.PRIO_PROCESS, 0)  # what threads inherit (0 unless the tests run niced)
    try:
        assert _kernel_view(seen["plain"]) == ("plain-worker", base)
        assert _kernel_view(seen["nice"]) == ("nice-worker", max(base, 7))
        assert seen["nice"] in os_threads("nice-work")
    finally:
        done.set()
