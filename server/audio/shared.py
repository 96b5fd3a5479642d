"""Small shared-memory blocks beside the audio rings: named counters and settings, and one array handed over once.

Both attach from another process by their ``spec()``. The creator owns the block: its
``close()`` also unlinks it; an attached handle only unmaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from multiprocessing import shared_memory

import numpy as np


class _Named:
    """Named numbers in shared memory: one process writes each, any process reads."""

    dtype: type[np.generic] = np.int64

    def __init__(self, fields: Sequence[str], name: str | None = None) -> None:
        self.fields = tuple(fields)
        if len(set(self.fields)) != len(self.fields) or not self.fields:
            raise ValueError(f"names must be distinct and at least one: {self.fields}")
        self._index = {f: i for i, f in enumerate(self.fields)}
        self._owner = name is None
        self.shm = shared_memory.SharedMemory(name=name, create=name is None, size=8 * len(self.fields))
        buf = self.shm.buf
        assert buf is not None
        self._values = np.ndarray((len(self.fields),), self.dtype, buf[: 8 * len(self.fields)])
        if self._owner:
            self._values[:] = 0

    def spec(self) -> tuple[tuple[str, ...], str]:
        """What another process needs to attach: ``type(self)(*spec)``."""
        return (self.fields, self.shm.name)

    def close(self) -> None:
        del self._values  # views into the buffer must go before the mapping can close
        self.shm.close()
        if self._owner:
            self.shm.unlink()


class Counters(_Named):
    """Named int64 counters: one process adds, any process reads.

    int64 so a count per audio block stays exact for ever (a float32 one stops at 2^24, 25 h
    of 256-sample blocks). One writer per counter: ``add`` is not atomic across writers.
    """

    def add(self, field: str, n: int = 1) -> None:
        """Writer: count ``n`` more (no allocation beyond numpy's scalar; safe in the audio callback)."""
        self._values[self._index[field]] += n

    def get(self, field: str) -> int:
        return int(self._values[self._index[field]])

    def snapshot(self) -> dict[str, int]:
        """All counters at once, as plain ints."""
        values = self._values.copy()
        return {f: int(values[i]) for i, f in enumerate(self.fields)}


class Controls(_Named):
    """Named float64 settings: the server writes, the audio callback reads once per block.

    A setter costs a store, not a message to the audio process: a fader flood never wakes its
    main thread, whose hold on that process's GIL would make the real-time callback wait. An
    aligned 8-byte store is atomic on the machines we run on, so a reader sees the old value or
    the new one.
    """

    dtype = np.float64

    def set(self, field: str, value: float) -> None:
        self._values[self._index[field]] = value

    def get(self, field: str) -> float:
        return float(self._values[self._index[field]])

    def values(self) -> np.ndarray:
        """All settings as a copy, in ``fields`` order (cheap enough for every block)."""
        return self._values.copy()


class SharedArray:
    """One array handed from one process to another: the sender fills it, the receiver copies it out.

    For data too large for a pipe message (a decoded file: tens of MB) that the receiver must
    take in slices, without holding a lock or the pipe.
    """

    def __init__(self, shape: Sequence[int], dtype: str = "float32", name: str | None = None) -> None:
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype).str
        size = max(1, int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize)  # a block cannot be empty
        self._owner = name is None
        self.shm = shared_memory.SharedMemory(name=name, create=name is None, size=size)
        buf = self.shm.buf
        assert buf is not None
        self.array: np.ndarray = np.ndarray(self.shape, self.dtype, buf)
        """The shared data (a view: valid until :meth:`close`)."""

    @classmethod
    def of(cls, data: np.ndarray) -> SharedArray:
        """A new block holding a copy of ``data``."""
        block = cls(data.shape, data.dtype.str)
        block.array[...] = data
        return block

    def spec(self) -> tuple[tuple[int, ...], str, str]:
        """What another process needs to attach: ``SharedArray(*spec)``."""
        return (self.shape, self.dtype, self.shm.name)

    def close(self) -> None:
        del self.array
        self.shm.close()
        if self._owner:
            self.shm.unlink()
