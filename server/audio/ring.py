"""Lock-free single-producer single-consumer rings of audio in shared memory, between processes.

The producer writes samples, then publishes its running count; the consumer reads up to that
count and publishes its own. Neither side ever waits on the other: a full ring overwrites the
oldest audio (the consumer notices and counts the loss), an empty ring returns nothing.
Rings carry audio only: counters and one-shot transfers are :mod:`earsight.audio.shared`'s.
"""

from __future__ import annotations

from multiprocessing import shared_memory

import numpy as np

_HEADER = 64  # bytes: two uint64 counters, padded to a cache line


class Ring:
    """``capacity`` frames of ``channels`` float32 samples in a named shared-memory block."""

    def __init__(self, capacity: int, channels: int = 1, name: str | None = None) -> None:
        self.capacity = int(capacity)
        self.channels = int(channels)
        size = _HEADER + self.capacity * self.channels * 4
        self._owner = name is None
        self.shm = shared_memory.SharedMemory(name=name, create=name is None, size=size)
        buf = self.shm.buf
        assert buf is not None
        self._counts = np.ndarray((2,), np.uint64, buf[:16])
        self._data = np.ndarray((self.capacity, self.channels), np.float32, buf[_HEADER:size])
        if self._owner:
            self._counts[:] = 0
        self.dropped = 0
        """Frames the consumer lost because the producer lapped it (consumer side only)."""

    @property
    def name(self) -> str:
        return self.shm.name

    def spec(self) -> tuple[int, int, str]:
        """What another process needs to attach: ``Ring(*spec)``."""
        return (self.capacity, self.channels, self.name)

    @property
    def written(self) -> int:
        return int(self._counts[0])

    @property
    def consumed(self) -> int:
        return int(self._counts[1])

    def available(self) -> int:
        return self.written - self.consumed

    def write(self, frames: np.ndarray) -> None:
        """Producer: append ``(n, channels)`` or ``(n,)`` samples, overwriting the oldest if full."""
        frames = np.asarray(frames, np.float32).reshape(-1, self.channels)
        n = frames.shape[0]
        start = self.written
        if n > self.capacity:  # only the newest fit; the rest counts as written and lost
            start += n - self.capacity
            frames, n = frames[-self.capacity :], self.capacity
        first = start % self.capacity
        head = min(n, self.capacity - first)
        self._data[first : first + head] = frames[:head]
        self._data[: n - head] = frames[head:]
        self._counts[0] = np.uint64(start + n)  # publish after the data is in place

    def read(self, max_frames: int | None = None) -> np.ndarray:
        """Consumer: take up to ``max_frames`` unread frames, oldest first, as ``(n, channels)``."""
        written, consumed = self.written, self.consumed
        if written - consumed > self.capacity:  # lapped: the oldest audio is gone
            self.dropped += written - consumed - self.capacity
            consumed = written - self.capacity
        n = written - consumed
        if max_frames is not None:
            n = min(n, max_frames)
        first = consumed % self.capacity
        head = min(n, self.capacity - first)
        out = np.concatenate([self._data[first : first + head], self._data[: n - head]])
        self._counts[1] = np.uint64(consumed + n)
        return out

    def read_into(self, out: np.ndarray) -> int:
        """Consumer, without allocating: fill ``out`` (``(n, channels)``); returns frames read, rest zeroed."""
        written, consumed = self.written, self.consumed
        if written - consumed > self.capacity:
            self.dropped += written - consumed - self.capacity
            consumed = written - self.capacity
        n = min(written - consumed, out.shape[0])
        first = consumed % self.capacity
        head = min(n, self.capacity - first)
        out[:head] = self._data[first : first + head]
        out[head:n] = self._data[: n - head]
        out[n:] = 0.0
        self._counts[1] = np.uint64(consumed + n)
        return n

    def latest(self, frames: int) -> np.ndarray:
        """The newest ``frames`` frames (zeros before the start), without consuming: for any reader."""
        end = self.written
        return self.frames(end - min(int(frames), self.capacity), end)

    def frames(self, start: int, stop: int) -> np.ndarray:
        """Frames ``[start, stop)`` counted as ``written`` counts them, ``(n, channels)``, without consuming.

        Zeros before the first frame written. Only the last ``capacity`` frames are still there:
        older ones have been overwritten by newer audio.
        """
        idx = np.arange(int(start), int(stop))
        out = self._data[idx % self.capacity]  # fancy indexing: a copy
        out[idx < 0] = 0.0
        return out

    def close(self) -> None:
        # Views into the buffer must go before the mapping can close.
        del self._counts, self._data
        self.shm.close()
        if self._owner:
            self.shm.unlink()
