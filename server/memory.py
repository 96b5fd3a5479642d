"""Keeping a long-running server's memory flat and its pauses short.

**glibc's allocator told to give freed memory back.**

The server allocates arrays of changing sizes all day (audio blocks, the ear's backlog when it
skips ahead, dream windows, JPEG frames). glibc raises its mmap threshold each time a large block
is freed, after which large arrays come from the heap, where freed holes are rarely returned:
the resident size then climbs in steps over hours although nothing leaks. A fixed threshold
keeps large arrays in their own mappings (returned on free), and a periodic ``malloc_trim``
hands back what the heap holds free. Elsewhere than glibc both are no-ops.

**The heap that lives for ever kept out of the cyclic collector.** A full collection walks every
tracked object: with torch, the models and the services loaded that is 170k objects and over
100 ms, during which no thread runs Python (the ear, the dream, the OSC intake all wait), and a
steady flood of messages triggers one every so often. What exists once the server has started
lives as long as the server, so it is frozen (``gc.freeze``) and later collections only walk
what came after.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 256 << 10
"""Arrays of at least this many bytes get a mapping of their own, unmapped when freed."""
TRIM_EVERY = 10.0
"""Seconds between two ``malloc_trim`` calls of the housekeeping thread."""


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LIBC = _libc()


def fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Stop glibc raising its mmap threshold (call once, early); False where this is not glibc."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(M_MMAP_THRESHOLD, threshold))


def trim() -> bool:
    """Give the heap's free memory back to the system; True if some was."""
    return bool(_LIBC.malloc_trim(0)) if _LIBC is not None else False


def freeze_heap() -> int:
    """Collect once, then exempt every surviving object from later collections; how many were frozen.

    Call when start-up is over: whatever is alive then is not garbage, and freezing it before a
    collection would keep its unreachable cycles for ever.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def rss_mb(pid: int | None = None) -> float:
    """Resident size of a process (this one by default) in MB, from /proc; 0 where there is none."""
    try:
        with open(f"/proc/{pid or os.getpid()}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)
    except (OSError, ValueError, IndexError):
        return 0.0
