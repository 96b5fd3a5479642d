"""A reader for TensorFlow checkpoints (format V2), without TensorFlow or protobuf.

A V2 checkpoint ``prefix`` is two files:

- ``prefix.index``: an SSTable (LevelDB's table format, as TensorFlow's ``lib/io/table`` writes
  it) mapping each variable name to a ``BundleEntryProto`` that says where its bytes are; the
  empty key holds a ``BundleHeaderProto`` (shard count, endianness, version).
- ``prefix.data-SSSSS-of-NNNNN``: the raw little-endian tensor bytes, concatenated.

Only what checkpoints of plain dense tensors need is implemented: uncompressed blocks, numeric
dtypes, one or more shards. Partitioned (sliced) variables and string tensors raise
:class:`CheckpointError`. Checksums (masked CRC-32C) of index blocks are always verified; those of
tensors on request, because a pure-Python CRC costs about a second per 10 MB.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import EarsightError

TABLE_MAGIC = 0xDB4775248B80FB57
"""The last 8 bytes of every LevelDB/TensorFlow table."""
FOOTER_SIZE = 48
"""Two block handles (each two varint64s, at most 20 bytes), zero-padded to 40, plus the magic."""
BLOCK_TRAILER_SIZE = 5
"""After each block: one compression-type byte and a masked CRC-32C of block + type byte."""

# tensorflow/core/framework/types.proto: DataType -> numpy little-endian dtype.
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    5: np.dtype("<i2"),  # DT_INT16
    6: np.dtype("i1"),  # DT_INT8
    8: np.dtype("<c8"),  # DT_COMPLEX64
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    17: np.dtype("<u2"),  # DT_UINT16
    18: np.dtype("<c16"),  # DT_COMPLEX128
    19: np.dtype("<f2"),  # DT_HALF
    22: np.dtype("<u4"),  # DT_UINT32
    23: np.dtype("<u8"),  # DT_UINT64
}


class CheckpointError(EarsightError):
    """The files are not a checkpoint this reader understands, or they are corrupt."""


# --- CRC-32C (Castagnoli), as LevelDB masks it -------------------------------------------------


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C of ``data`` (unmasked). Known answer: ``crc32c(b"123456789") == 0xE3069283``."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    """Undo LevelDB's mask (it stores CRCs rotated and offset so CRCs of CRCs stay useful)."""
    rot = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# --- varints and protobuf wire format ---------------------------------------------------------


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a base-128 varint at ``pos``; return ``(value, position after it)``."""
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise CheckpointError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CheckpointError("varint longer than 64 bits")


def proto_fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """Split a protobuf message into ``(field number, value)`` pairs, in wire order.

    Varints come back as ints, fixed32/fixed64 as unsigned ints, length-delimited fields as bytes.
    Unknown fields are kept: the caller picks what it needs.
    """
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = read_varint(data, pos)
        elif wire == 1:
            value = struct.unpack_from("<Q", data, pos)[0]
            pos += 8
        elif wire == 2:
            length, pos = read_varint(data, pos)
            value = bytes(data[pos : pos + length])
            if len(value) != length:
                raise CheckpointError("truncated protobuf field")
            pos += length
        elif wire == 5:
            value = struct.unpack_from("<I", data, pos)[0]
            pos += 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire}")
        fields.append((number, value))
    return fields


@dataclass(frozen=True)
class Entry:
    """The fields of a ``BundleEntryProto`` this reader uses."""

    dtype: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int | None
    """Masked CRC-32C of the tensor bytes, when the writer stored one."""
    sliced: bool


def _shape(data: bytes) -> tuple[int, ...]:
    """``TensorShapeProto``: repeated ``Dim dim = 2`` (``int64 size = 1``); ``unknown_rank = 3``."""
    dims = []
    for number, value in proto_fields(data):
        if number == 2 and isinstance(value, bytes):
            size = 0
            for n, v in proto_fields(value):
                if n == 1 and isinstance(v, int):
                    size = v - (1 << 64) if v >= 1 << 63 else v  # int64 is two's complement
            dims.append(size)
        elif number == 3 and value:
            raise CheckpointError("tensor of unknown rank")
    return tuple(dims)


def parse_entry(data: bytes) -> Entry:
    """Decode a ``BundleEntryProto``: dtype=1, shape=2, shard_id=3, offset=4, size=5, crc32c=6 (fixed32), slices=7."""
    shape: tuple[int, ...] = ()
    crc: int | None = None
    dtype, shard, offset, size, sliced = 0, 0, 0, 0, False
    for number, value in proto_fields(data):
        if number == 1 and isinstance(value, int):
            dtype = value
        elif number == 2 and isinstance(value, bytes):
            shape = _shape(value)
        elif number == 3 and isinstance(value, int):
            shard = value
        elif number == 4 and isinstance(value, int):
            offset = value
        elif number == 5 and isinstance(value, int):
            size = value
        elif number == 6 and isinstance(value, int):
            crc = value
        elif number == 7:
            sliced = True
    return Entry(dtype, shape, shard, offset, size, crc, sliced)


# --- the SSTable --------------------------------------------------------------------------------


def _block(data: bytes, offset: int, size: int) -> bytes:
    """The contents of the block at a handle, its trailer checked."""
    end = offset + size
    if end + BLOCK_TRAILER_SIZE > len(data):
        raise CheckpointError("block handle points past the end of the index")
    compression = data[end]
    if compression != 0:
        raise CheckpointError(f"compressed index blocks (type {compression}) are not supported")
    (masked,) = struct.unpack_from("<I", data, end + 1)
    if crc32c(data[offset : end + 1]) != unmask_crc(masked):
        raise CheckpointError("index block checksum mismatch")
    return data[offset:end]


def block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """All ``(key, value)`` pairs of one block, in order.

    Layout: entries ``varint shared, varint unshared, varint value_length, key[shared:], value``
    (keys share a prefix with the previous key), then ``uint32 restarts[n]`` and ``uint32 n``.
    Restart points only speed up seeks; a full scan can ignore them.
    """
    if len(block) < 4:
        raise CheckpointError("block too short")
    (n_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    end = len(block) - 4 * (n_restarts + 1)
    if end < 0:
        raise CheckpointError("bad restart count")
    entries = []
    key = b""
    pos = 0
    while pos < end:
        shared, pos = read_varint(block, pos)
        unshared, pos = read_varint(block, pos)
        length, pos = read_varint(block, pos)
        if shared > len(key) or pos + unshared + length > end:
            raise CheckpointError("corrupt block entry")
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + length]))
        pos += length
    return entries


def read_table(data: bytes) -> list[tuple[bytes, bytes]]:
    """All ``(key, value)`` pairs of an SSTable held in ``data``, in key order."""
    if len(data) < FOOTER_SIZE:
        raise CheckpointError("index file too short for a table footer")
    footer = data[-FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)
    if magic != TABLE_MAGIC:
        raise CheckpointError("not a TensorFlow table (bad magic number)")
    # The footer starts with the metaindex handle, then the index handle; the metaindex is empty
    # in checkpoints (no filters), so skip it.
    _, pos = read_varint(footer, 0)
    _, pos = read_varint(footer, pos)
    index_offset, pos = read_varint(footer, pos)
    index_size, pos = read_varint(footer, pos)
    entries = []
    for _, handle in block_entries(_block(data, index_offset, index_size)):
        offset, p = read_varint(handle, 0)
        size, _ = read_varint(handle, p)
        entries.extend(block_entries(_block(data, offset, size)))
    return entries


# --- the checkpoint -----------------------------------------------------------------------------


def _file(prefix: str | Path, suffix: str) -> Path:
    """``prefix + suffix`` as TensorFlow joins them; a directory prefix (as the musicnn wheel
    saved, ``dir/`` -> ``dir/.index``) may be given without its trailing slash."""
    base = str(prefix)
    if os.path.isdir(base) and not base.endswith(os.sep):
        base += os.sep
    return Path(base + suffix)


def read_index(prefix: str | Path) -> tuple[int, dict[str, Entry]]:
    """Read ``prefix.index``: the number of data shards and each tensor's entry, by name."""
    data = _file(prefix, ".index").read_bytes()
    n_shards = 1
    entries: dict[str, Entry] = {}
    for key, value in read_table(data):
        if key == b"":
            # BundleHeaderProto: num_shards=1, endianness=2 (0 little, 1 big), version=3.
            for number, v in proto_fields(value):
                if number == 1 and isinstance(v, int):
                    n_shards = v
                elif number == 2 and v:
                    raise CheckpointError("big-endian checkpoints are not supported")
            continue
        entries[key.decode("utf-8")] = parse_entry(value)
    return n_shards, entries


def read_checkpoint(prefix: str | Path, *, verify: bool = False) -> dict[str, np.ndarray]:
    """Every tensor of the V2 checkpoint at ``prefix`` (the path without ``.index``), by variable name.

    Each array has the variable's shape and dtype (e.g. a conv kernel ``(kh, kw, in, out)``
    float32) and owns its memory. ``verify`` checks each tensor's CRC-32C too (slow: pure Python).
    Raises :class:`CheckpointError` for anything it does not understand rather than guess.
    """
    n_shards, entries = read_index(prefix)
    shards: dict[int, bytes] = {}
    tensors: dict[str, np.ndarray] = {}
    for name, entry in entries.items():
        if entry.sliced:
            raise CheckpointError(f"{name}: partitioned variables are not supported")
        if entry.dtype not in DTYPES:
            raise CheckpointError(f"{name}: unsupported dtype {entry.dtype}")
        if not 0 <= entry.shard_id < n_shards:
            raise CheckpointError(f"{name}: shard {entry.shard_id} of {n_shards}")
        if entry.shard_id not in shards:
            suffix = f".data-{entry.shard_id:05d}-of-{n_shards:05d}"
            shards[entry.shard_id] = _file(prefix, suffix).read_bytes()
        raw = shards[entry.shard_id][entry.offset : entry.offset + entry.size]
        dtype = DTYPES[entry.dtype]
        count = int(np.prod(entry.shape, dtype=np.int64))
        if len(raw) != entry.size or entry.size != count * dtype.itemsize:
            raise CheckpointError(
                f"{name}: {entry.size} bytes at {entry.offset} do not hold shape {entry.shape} of {dtype}"
            )
        if verify and entry.crc32c is not None and crc32c(raw) != unmask_crc(entry.crc32c):
            raise CheckpointError(f"{name}: checksum mismatch")
        tensors[name] = np.frombuffer(raw, dtype).reshape(entry.shape).copy()
    return tensors
