"""Chaining and framing audit records: the pure-Python twin of ``auditchain.pyx``.

Each body becomes the frame ``u32 length, u32 CRC32(payload), payload`` with
``payload = previous record hash, u64 record number, body``; the record's hash (SHA-256,
or HMAC-SHA256 with a key) starts the next payload. Format: docs/audit-format.md.
"""

from __future__ import annotations

from myguard.audit.segment import PAYLOAD_PREFIX, encode_frame, record_hash


def chain_frames(
    bodies: list[bytes], prev_hash: bytes, number: int, key: bytes | None
) -> tuple[bytes, bytes, int]:
    """The frames of ``bodies`` chained on from ``prev_hash`` as record ``number`` onwards:
    (frames, hash of the last record, the next record number)."""
    if len(prev_hash) != 32:
        raise ValueError("prev_hash must be 32 bytes")
    frames = []
    for body in bodies:
        payload = PAYLOAD_PREFIX.pack(prev_hash, number) + body
        frames.append(encode_frame(payload))
        prev_hash = record_hash(payload, key)
        number += 1
    return b"".join(frames), prev_hash, number
