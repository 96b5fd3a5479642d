"""Token buckets: at most ``rate`` events per second per key, with bursts of ``burst``.

Used where a flood must cost the server little: /ear/fail answers per address, and log lines
about bad input (a flood of them would fill the disk and take the GIL).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable


class RateLimit:
    def __init__(self, rate: float, burst: float, *, keys: int = 1024) -> None:
        self.rate = rate
        self.burst = burst
        self.keys = keys
        """Keys remembered at most (forged senders by the thousand must not grow memory)."""
        self.suppressed = 0
        self._buckets: dict[Hashable, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: Hashable = None) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if len(self._buckets) >= self.keys and key not in self._buckets:
                self._buckets.clear()
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                self.suppressed += 1
                return False
            self._buckets[key] = (tokens - 1.0, now)
            return True
