"""Chaining and framing audit records: the pure-Python twin of ``auditchain.pyx``.

Each record body becomes the frame ``u32 length, u32 CRC32(payload), payload`` with
``payload = previous record hash, u64 record number, body``; the record's hash (SHA-256,
or HMAC-SHA256 with a key) starts the next payload. Format: docs/audit-format.md.
"""

from __future__ import annotations

import os
import time

from myguard.audit.segment import PAYLOAD_PREFIX, encode_frame, record_hash


def _frame(body: bytes, prev_hash: bytes, number: int, key: bytes | None) -> tuple[bytes, bytes]:
    """The frame of ``body`` as record ``number`` after ``prev_hash``, and its hash."""
    payload = PAYLOAD_PREFIX.pack(prev_hash, number) + body
    return encode_frame(payload), record_hash(payload, key)


class Tail:
    """The end of the hash chain in the segment being written: ``append`` frames a record
    body as record ``next_record`` after ``last_hash`` and writes it at offset ``size`` of
    ``fd``. On OSError nothing of it remains in the file and the tail is unchanged."""

    def __init__(self, key: bytes | None, last_hash: bytes, next_record: int) -> None:
        if len(last_hash) != 32:
            raise ValueError("last_hash must be 32 bytes")
        self._key = key
        self.fd = -1
        self.size = 0
        self.last_hash = last_hash
        self.next_record = next_record
        self._truncate_pending = False
        # For ``offer``, set by the writer: a segment of ``header_size`` holds no record; one
        # of ``rotate_size`` bytes, or still written at ``rotate_at`` (time.time()), is due
        # to rotate; ``accepting`` while the writer takes records; ``syncer`` (an
        # auditsync.Syncer, or None without syncing) hears of each offered record.
        self.header_size = 0
        self.rotate_size = (1 << 63) - 1
        self.rotate_at = float("inf")
        self.accepting = False
        self.syncer = None

    def due(self, now: float) -> bool:
        """Is the segment due to rotate: it holds a record and is big or old enough?"""
        return self.size > self.header_size and (
            self.size >= self.rotate_size or now >= self.rotate_at
        )

    def offer(self, body: bytes) -> bool:
        """The event loop's fast way in for a record nobody waits on: append ``body`` and
        tell the ``syncer``. False, with nothing written, when the writer must do it: not
        ``accepting``, the segment due to rotate, or the write failed (the writer's own
        attempt then reports why)."""
        if not self.accepting or self.due(time.time()):
            return False
        try:
            self.append(body)
        except OSError:
            return False
        if self.syncer is not None:
            self.syncer.written()
        return True

    def append(self, body: bytes) -> None:
        frame, prev = _frame(body, self.last_hash, self.next_record, self._key)
        start = self.size
        if self._truncate_pending:
            os.ftruncate(self.fd, start)
            self._truncate_pending = False
        done = 0
        try:
            while done < len(frame):
                done += os.pwrite(self.fd, frame[done:], start + done)
        except OSError:
            # A torn record would break the chain: cut it off, or first thing next time.
            try:
                os.ftruncate(self.fd, start)
            except OSError:
                self._truncate_pending = True
            raise
        self.size = start + len(frame)
        self.last_hash = prev
        self.next_record += 1
