"""The synchronous side of the writer: opens/repairs the chain, appends frames, rotates.

Used from one thread only (the writer thread). Every append either lands completely or
is truncated away again, so the segment on disk is always a valid prefix of the chain.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from myguard._fast import load
from myguard.audit.records import AuditFormatError
from myguard.audit.segment import (
    FLAG_HMAC,
    FRAME_HEAD,
    HEADER_SIZE,
    ZERO_HASH,
    FrameError,
    SegmentHeader,
    iter_frames,
    key_id,
    list_segments,
    record_hash,
    segment_name,
    split_payload,
)

_chain = load("auditchain")


@dataclass(frozen=True, slots=True)
class Repair:
    """What open() found at the end of the previous run (for the restart record)."""

    reason: str
    segment: str | None = None
    offset: int | None = None
    truncated_bytes: int | None = None


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | bytearray, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


class SegmentAppender:
    def __init__(self, directory: Path, hmac_key: bytes | None) -> None:
        self.directory = directory
        self.key = hmac_key
        self._flags = FLAG_HMAC if hmac_key is not None else 0
        self._key_id = key_id(hmac_key)
        self.fd = -1
        self.segment_seq = 0
        self.segment_path = directory
        self.segment_created = 0.0
        self.size = 0
        self.last_hash = ZERO_HASH
        self.next_record = 1
        self._truncate_pending = False

    @classmethod
    def open(
        cls, directory: str | Path, hmac_key: bytes | None
    ) -> tuple[SegmentAppender, Repair | None]:
        """Open the chain in ``directory``, repairing a torn tail; Repair is None for a new chain."""
        appender = cls(Path(directory), hmac_key)
        appender.directory.mkdir(parents=True, exist_ok=True)
        for leftover in appender.directory.glob("*.seg.tmp"):
            leftover.unlink()
        segments = list_segments(appender.directory)
        if not segments:
            appender._create_segment(1)
            return appender, None
        return appender, appender._resume(*segments[-1])

    def _resume(self, seq: int, path: Path) -> Repair:
        data = path.read_bytes()
        header = SegmentHeader.decode(data)
        if (header.flags & FLAG_HMAC, header.key_id) != (self._flags, self._key_id):
            raise AuditFormatError(
                f"{path.name} was written with a different HMAC setting or key; "
                "start a new audit directory to change it"
            )
        self.last_hash = header.prev_hash
        self.next_record = header.first_record
        end = HEADER_SIZE
        damage: FrameError | None = None
        try:
            for offset, payload in iter_frames(data):
                self.last_hash = record_hash(payload, self.key)
                self.next_record = split_payload(payload)[1] + 1
                end = offset + FRAME_HEAD.size + len(payload)
        except FrameError as exc:
            damage = exc
        self._adopt(seq, path, header.created, end)
        if damage is None:
            return Repair("restart")
        tail = data[damage.offset :]
        if not damage.torn and tail.strip(b"\x00"):
            # Damage followed by more data is not a torn write: keep the file untouched as
            # evidence (verify reports it) and continue the chain in a new segment.
            self._create_segment(seq + 1)
            return Repair(
                f"damaged segment left in place: {damage.reason}", path.name, damage.offset
            )
        # A torn tail: keep the cut bytes beside the segment, then cut them off.
        (path.parent / f"{path.name}.torn-{damage.offset}").write_bytes(tail)
        os.ftruncate(self.fd, damage.offset)
        os.fsync(self.fd)
        return Repair("repaired torn tail", path.name, damage.offset, len(tail))

    def _adopt(self, seq: int, path: Path, created: float, size: int) -> None:
        self.fd = os.open(path, os.O_RDWR)
        self.segment_seq, self.segment_path, self.segment_created = seq, path, created
        self.size = size

    def _create_segment(self, seq: int) -> None:
        """Write the new header under a temporary name, then rename: no half headers."""
        path = self.directory / segment_name(seq)
        tmp = path.with_name(path.name + ".tmp")
        created = time.time()
        header = SegmentHeader(
            seq, self.next_record, created, self.last_hash, self._flags, self._key_id
        )
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            _write_all(fd, header.encode(), 0)
            os.fsync(fd)
            os.rename(tmp, path)
            _fsync_directory(self.directory)
        except OSError:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = fd
        self.segment_seq, self.segment_path, self.segment_created = seq, path, created
        self.size = HEADER_SIZE

    def rotate(self) -> None:
        """Seal the current segment and start the next one (the old one stays on error)."""
        os.fsync(self.fd)
        self._create_segment(self.segment_seq + 1)

    def append(self, bodies: list[bytes], sync: bool) -> None:
        """Chain, frame and write ``bodies``; on OSError nothing of them remains on disk."""
        buffer, prev, number = _chain.chain_frames(
            bodies, self.last_hash, self.next_record, self.key
        )
        start = self.size
        if self._truncate_pending:
            os.ftruncate(self.fd, start)
            self._truncate_pending = False
        try:
            _write_all(self.fd, buffer, start)
            if sync:
                os.fdatasync(self.fd)
        except OSError:
            try:
                os.ftruncate(self.fd, start)
            except OSError:
                self._truncate_pending = True  # retried first thing on the next append
            raise
        self.size = start + len(buffer)
        self.last_hash, self.next_record = prev, number

    def close(self) -> None:
        if self.fd >= 0:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
