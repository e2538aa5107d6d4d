"""Packing a msgpack map from keys, values and already-packed pairs: the pure-Python twin
of ``recordpack.pyx``. The audit trail builds each statement record with it."""

from __future__ import annotations

from typing import Any

import msgpack


def map_header(count: int) -> bytes:
    """The msgpack header of a map with ``count`` pairs."""
    if count <= 15:
        return bytes((0x80 | count,))
    if count <= 0xFFFF:
        return b"\xde" + count.to_bytes(2, "big")
    return b"\xdf" + count.to_bytes(4, "big")


def pack_map(keys: tuple[str, ...], values: tuple[Any, ...], tail: bytes, tail_count: int) -> bytes:
    """A msgpack map of ``keys`` to ``values`` (pairs whose value is None left out),
    followed by ``tail``: ``tail_count`` pairs packed earlier."""
    if len(keys) != len(values):
        raise ValueError("keys and values differ in length")
    if len(keys) > 32:
        raise ValueError("pack_map takes at most 32 keys")
    present = {key: value for key, value in zip(keys, values, strict=True) if value is not None}
    packed = msgpack.packb(present)
    head = len(map_header(len(present)))
    return map_header(len(present) + tail_count) + packed[head:] + tail
