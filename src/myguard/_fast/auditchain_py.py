"""Chaining and framing audit records: the pure-Python twin of ``auditchain.pyx``.

Each record body becomes the frame ``u32 length, u32 CRC32(payload), payload`` with
``payload = previous record hash, u64 record number, body``; the record's hash (SHA-256,
or HMAC-SHA256 with a key) starts the next payload. Format: docs/audit-format.md.
The ring (``offer`` copies frames into a mapped file on a memory filesystem, the writer
thread's ``drain`` moves them into the segment) is described in ``auditchain.pyx``.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import threading
import time

from myguard.audit.segment import (
    PAYLOAD_PREFIX,
    RING_DATA,
    RING_MAGIC,
    encode_frame,
    record_hash,
    write_all,
)

_WORD = struct.Struct("=Q")
# Offsets of the ring header's words (segment.RING_HEADER).
R_CAPACITY, R_SEQ, R_EPOCH_OFFSET, R_EPOCH_START, R_DRAINED, R_WRITTEN = range(8, 56, 8)
# How far beyond the records it drains a synced segment is zero-filled (see the .pyx).
ZERO_AHEAD = 1 << 20
_ZEROS = bytes(1 << 16)
_NEVER = (1 << 63) - 1  # no more zeros for this segment (a write of them failed)


def _frame(body: bytes, prev_hash: bytes, number: int, key: bytes | None) -> tuple[bytes, bytes]:
    """The frame of ``body`` as record ``number`` after ``prev_hash``, and its hash."""
    payload = PAYLOAD_PREFIX.pack(prev_hash, number) + body
    return encode_frame(payload), record_hash(payload, key)


class Tail:
    """The end of the hash chain in the segment being written: ``append`` frames a record
    body as record ``next_record`` after ``last_hash`` and writes it at offset ``size`` of
    ``fd``. On OSError nothing of it remains in the file and the tail is unchanged.
    With a ring attached, ``offer`` puts records in the ring and ``drain`` moves them to
    the segment; ``append`` drains first, so the segment keeps the chain's order. ``seq``
    is the number of the segment behind ``fd``."""

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
        self.seq = 0
        self._map: mmap.mmap | None = None
        self._capacity = 0
        self._epoch_fd = -1
        self._lock = threading.Lock()
        # ``drain`` zero-fills the segment ahead of its records (set when the writer syncs).
        self.preallocate = False
        self._zero_seq = 0
        self._zeroed = 0

    def attach_ring(self, path: str, capacity: int) -> None:
        """Take records through a new, empty ring in the file at ``path`` (made or reset;
        replay an old one first), ``capacity`` bytes of data reserved at once."""
        if self._map is not None:
            raise ValueError("a ring is attached already")
        if capacity < 4096:
            raise ValueError("a ring needs at least 4096 bytes")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            os.ftruncate(fd, RING_DATA + capacity)
            os.posix_fallocate(fd, 0, RING_DATA + capacity)
            self._map = mmap.mmap(fd, RING_DATA + capacity)
        finally:
            os.close(fd)
        self._capacity = capacity
        for field in (R_SEQ, R_EPOCH_OFFSET, R_EPOCH_START, R_DRAINED, R_WRITTEN):
            self._put(field, 0)
        self._put(R_CAPACITY, capacity)
        self._map[:8] = RING_MAGIC

    def _get(self, at: int) -> int:
        return _WORD.unpack_from(self._map, at)[0]

    def _put(self, at: int, value: int) -> None:
        _WORD.pack_into(self._map, at, value)

    @property
    def ring_pending(self) -> int:
        """Bytes in the ring not yet drained into the segment (0 without a ring)."""
        if self._map is None:
            return 0
        return self._get(R_WRITTEN) - self._get(R_DRAINED)

    def drain(self) -> int:
        """Move what the ring holds into its segment: 0, or the errno of a failed write
        (nothing counts as drained then; the next drain writes the same bytes again)."""
        if self._map is None:
            return 0
        with self._lock:
            drained, written = self._get(R_DRAINED), self._get(R_WRITTEN)
            if written == drained:
                return 0
            offset = self._get(R_EPOCH_OFFSET) + drained - self._get(R_EPOCH_START)
            at = drained % self._capacity
            first = min(written - drained, self._capacity - at)
            if self.preallocate:
                self._zero_ahead(offset, offset + written - drained)
            data = memoryview(self._map)
            try:
                write_all(self._epoch_fd, data[RING_DATA + at : RING_DATA + at + first], offset)
                rest = written - drained - first
                write_all(self._epoch_fd, data[RING_DATA : RING_DATA + rest], offset + first)
            except OSError as exc:
                return exc.errno or 5
            finally:
                data.release()
            self._put(R_DRAINED, written)
            return 0

    def _zero_ahead(self, offset: int, end: int) -> None:
        """Zeros from ``offset`` to ``ZERO_AHEAD`` past ``end``, not past the rotation size,
        unless done for this segment already; best effort: cut off again when a write
        fails (see the .pyx)."""
        seq = self._get(R_SEQ)
        limit = min(end + ZERO_AHEAD, self.rotate_size)
        if seq != self._zero_seq:
            self._zero_seq, self._zeroed = seq, 0
        if end <= self._zeroed or limit <= end:
            return
        start = max(offset, self._zeroed)
        while start < limit:
            length = min(len(_ZEROS), limit - start)
            try:
                write_all(self._epoch_fd, _ZEROS[:length], start)
            except OSError:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._epoch_fd, offset)
                self._zeroed = _NEVER
                return
            start += length
        self._zeroed = start

    def flush(self) -> None:
        """Drain the ring now (on the caller's thread); OSError when the write fails."""
        error = self.drain()
        if error:
            raise OSError(error, os.strerror(error))

    def _into_ring(self, frame: bytes) -> bool:
        drained, written = self._get(R_DRAINED), self._get(R_WRITTEN)
        if written - drained + len(frame) > self._capacity:
            return False
        if written == drained:  # empty: a new epoch, at the segment's end
            self._put(R_SEQ, self.seq)
            self._put(R_EPOCH_OFFSET, self.size)
            self._put(R_EPOCH_START, written)
            self._epoch_fd = self.fd
        at = written % self._capacity
        first = min(len(frame), self._capacity - at)
        self._map[RING_DATA + at : RING_DATA + at + first] = frame[:first]
        self._map[RING_DATA : RING_DATA + len(frame) - first] = frame[first:]
        self._put(R_WRITTEN, written + len(frame))
        return True

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
        if self._map is not None:
            frame, prev = _frame(body, self.last_hash, self.next_record, self._key)
            if not self._into_ring(frame):
                return False
            self._advance(len(frame), prev)
        else:
            try:
                self.append(body)
            except OSError:
                return False
        if self.syncer is not None:
            self.syncer.written()
        return True

    def append(self, body: bytes) -> None:
        self.flush()
        frame, prev = _frame(body, self.last_hash, self.next_record, self._key)
        start = self.size
        if self._truncate_pending:
            os.ftruncate(self.fd, start)
            self._truncate_pending = False
        try:
            write_all(self.fd, frame, start)
        except OSError:
            # A torn record would break the chain: cut it off, or first thing next time.
            try:
                os.ftruncate(self.fd, start)
            except OSError:
                self._truncate_pending = True
            raise
        self._advance(len(frame), prev)

    def _advance(self, length: int, prev: bytes) -> None:
        self.size += length
        self.last_hash = prev
        self.next_record += 1
