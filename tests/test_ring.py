"""Shared-memory rings: order, wrap-around, overrun accounting, attach from another handle."""

import numpy as np

from earsight.audio.ring import Ring


def test_write_then_read_keeps_order_across_the_wrap() -> None:
    ring = Ring(10, 1)
    try:
        ring.write(np.arange(7))
        assert ring.read(5)[:, 0].tolist() == [0, 1, 2, 3, 4]
        ring.write(np.arange(7, 14))  # wraps around the end
        assert ring.read()[:, 0].tolist() == list(range(5, 14))
        assert ring.available() == 0
        assert ring.dropped == 0
    finally:
        ring.close()


def test_a_lapped_reader_loses_the_oldest_and_counts_them() -> None:
    ring = Ring(8, 2)
    try:
        ring.write(np.stack([np.arange(20), -np.arange(20)], axis=1))
        out = ring.read()
        assert out[:, 0].tolist() == list(range(12, 20))
        assert out[:, 1].tolist() == [-v for v in range(12, 20)]
        assert ring.dropped == 12
    finally:
        ring.close()


def test_read_into_fills_and_zeroes_the_rest() -> None:
    ring = Ring(16, 2)
    try:
        ring.write(np.ones((3, 2)))
        out = np.full((5, 2), 7.0, np.float32)
        assert ring.read_into(out) == 3
        assert out.tolist() == [[1, 1]] * 3 + [[0, 0]] * 2
    finally:
        ring.close()


def test_a_second_handle_sees_the_same_memory() -> None:
    ring = Ring(32, 1)
    try:
        other = Ring(*ring.spec())
        ring.write(np.arange(5))
        assert other.read()[:, 0].tolist() == [0, 1, 2, 3, 4]
        assert ring.available() == 0  # the consumer's count is shared too
        assert other.latest(3)[:, 0].tolist() == [2, 3, 4]
        assert other.latest(7)[:, 0].tolist() == [0, 0, 0, 1, 2, 3, 4]
        other.close()
    finally:
        ring.close()


def test_frames_by_absolute_count_without_consuming() -> None:
    ring = Ring(8, 1)
    try:
        ring.write(np.arange(1, 13))  # frames 0..11 hold 1..12; 0..3 are overwritten
        assert ring.frames(9, 12)[:, 0].tolist() == [10, 11, 12]
        assert ring.frames(6, 10)[:, 0].tolist() == [7, 8, 9, 10]  # across the wrap
        assert ring.frames(-2, 0).shape == (2, 1) and not ring.frames(-2, 0).any()
        assert ring.consumed == 0  # nothing consumed
        out = ring.frames(10, 12)
        out[:] = 0.0  # a copy: the ring is unchanged
        assert ring.latest(2)[:, 0].tolist() == [11, 12]
    finally:
        ring.close()
