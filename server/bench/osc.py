"""OSC intake: paced /ear/sync round trips against a bare python-osc parse-and-echo loop."""

from __future__ import annotations

import socket
import threading
import time

from ..cli import running_server


def bench_osc(rates: tuple[int, ...] = (2000, 5000, 10000, 20000), seconds: float = 1.0) -> dict[str, float]:
    """Sustained /ear/sync round trips at paced rates; a bare python-osc echo loop is the baseline."""
    from pythonosc.osc_packet import OscPacket

    from ..osc import message

    def run(target: tuple[str, int], rate: int) -> float:
        """Fraction of ``rate * seconds`` paced requests answered."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(1.0)
        got = 0

        def receive() -> None:
            nonlocal got
            while True:
                try:
                    data, _ = sock.recvfrom(65536)
                except (TimeoutError, OSError):
                    return
                got += data.startswith(b"/ear/synced")

        reader = threading.Thread(target=receive)
        reader.start()
        count = int(rate * seconds)
        packet = message("/ear/sync", 1)
        start = time.perf_counter()
        for i in range(count):
            sock.sendto(packet, target)
            if i % 50 == 49:  # pace in small batches: a steady stream at `rate`
                delay = start + (i + 1) / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
        reader.join()
        sock.close()
        return got / count

    bare = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bare.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    bare.bind(("127.0.0.1", 0))
    bare.settimeout(0.2)
    stop = threading.Event()

    def echo() -> None:  # the baseline: parse with python-osc and answer, nothing else
        while not stop.is_set():
            try:
                data, sender = bare.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            for m in OscPacket(data).messages:
                bare.sendto(message("/ear/synced", *m.message.params), sender)

    echo_thread = threading.Thread(target=echo)
    echo_thread.start()
    results: dict[str, float] = {}
    try:
        for rate in rates:
            results[f"bare python-osc echo: answered at {rate}/s (baseline)"] = run(bare.getsockname(), rate)
    finally:
        stop.set()
        echo_thread.join()
        bare.close()
    with running_server("--no-view", "--backend", "manual", "--input", "silence") as served:
        for rate in rates:
            results[f"earsight: answered at {rate}/s"] = run(served.address, rate)
    best = [r for r in rates if results[f"earsight: answered at {r}/s"] >= 0.999]
    results["earsight: highest rate with no loss (/s)"] = float(max(best) if best else 0)
    return results
