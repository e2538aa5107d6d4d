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


class StatementHead:
    """What the statement records of one session and decision begin with: ``count``
    pairs packed in ``data``; ``pack`` adds a statement's own fields, in the order of
    ``keys`` (the record type's code first, then ``at`` and the rest as ``pack`` takes
    them; docs/audit-format.md names them). Statement text beyond ``max_text``
    characters is cut (a 20 MB BLOB INSERT is not audit data)."""

    __slots__ = ("keys", "code", "data", "count", "max_text")

    def __init__(
        self, keys: tuple[str, ...], code: Any, data: bytes, count: int, max_text: int
    ) -> None:
        if len(keys) != 13:
            raise ValueError("a statement record has 13 fields of its own")
        self.keys = keys
        self.code = code
        self.data = data
        self.count = count
        self.max_text = max_text

    def pack(
        self,
        at: float,
        text: str,
        database: str | None,
        fingerprint: int | None,
        masked: dict[str, str] | None,
        approval_id: str | None,
        rows: int | None,
        affected: int | None,
        error_code: int | None,
        started: float | None,
        duration: float | None,
        intent_id: str | None,
    ) -> bytes:
        """The record body (fields that are None left out)."""
        if len(text) > self.max_text:
            text = f"{text[: self.max_text]}... [{len(text) - self.max_text} more characters]"
        values = (self.code, float(at), text, database, fingerprint, masked, approval_id,
                  rows, affected, error_code, started, duration, intent_id)  # fmt: skip
        return pack_map(self.keys, values, self.data, self.count)
