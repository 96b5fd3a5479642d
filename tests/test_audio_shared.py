"""Shared-memory counters (exact int64 counts) and one-shot arrays, seen from a second handle."""

from __future__ import annotations

import numpy as np
import pytest

from earsight.audio.shared import Controls, Counters, SharedArray


def test_counters_count_exactly_beyond_float32_and_int32() -> None:
    counters = Counters(("blocks", "late"))
    try:
        other = Counters(*counters.spec())  # as the audio process attaches
        for n in (2**24, 1, 2**31, 1):  # 2^24 + 1 is where float32 stops counting; 2^31 overflows int32
            other.add("blocks", n)
        other.add("late")
        assert counters.get("blocks") == 2**24 + 2**31 + 2
        assert counters.snapshot() == {"blocks": 2**24 + 2**31 + 2, "late": 1}
        other.close()
    finally:
        counters.close()


def test_counters_refuse_unknown_and_duplicate_names() -> None:
    with pytest.raises(ValueError, match="distinct"):
        Counters(("a", "a"))
    counters = Counters(("a",))
    try:
        with pytest.raises(KeyError):
            counters.add("b")
    finally:
        counters.close()


def test_settings_written_by_one_handle_are_read_by_another() -> None:
    controls = Controls(("gain", "dry"))
    try:
        other = Controls(*controls.spec())
        assert other.values().tolist() == [0.0, 0.0]
        controls.set("gain", 0.125)
        controls.set("dry", 3.5)
        assert other.get("gain") == 0.125 and other.values().tolist() == [0.125, 3.5]
        snapshot = other.values()
        controls.set("gain", 1.0)
        assert snapshot[0] == 0.125, "values() is a copy: the callback compares it with the next block's"
        other.close()
    finally:
        controls.close()


def test_a_shared_array_reaches_a_second_handle() -> None:
    data = np.arange(12, dtype=np.float32).reshape(6, 2)
    block = SharedArray.of(data)
    try:
        other = SharedArray(*block.spec())
        assert other.array.dtype == np.float32 and np.array_equal(other.array, data)
        other.close()
    finally:
        block.close()
    empty = SharedArray.of(np.zeros((0, 2), np.float32))  # an empty file decodes to this
    assert empty.array.shape == (0, 2)
    empty.close()
