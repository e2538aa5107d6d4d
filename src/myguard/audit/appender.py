"""The synchronous side of the writer: opens/repairs the chain, appends frames, rotates.

Records are appended on the event loop (each handed to the kernel before ``append``
returns); the writer thread only syncs. Every append either lands completely or is
truncated away again, so the segment on disk is always a valid prefix of the chain.

The writer thread fills the segment being written with zeros ahead of its records (see
``_fast/auditchain.pyx``); they are cut off when the segment is sealed or closed, or
when a crash left them and the segment is opened again.

Rotation on the loop must not wait for the disk, yet a power cut must not leave a new
segment whose header links to records the old one lost. So a new segment is started
under its ``.seg.tmp`` name (header written, no fsync) and records go into it at once;
the writer thread renames it into place (:meth:`SegmentAppender.seal`) only after the
segment before it is fsynced. After a process crash, :meth:`SegmentAppender.open` renames
such a continuation into place itself: it holds acknowledged records.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from myguard._fast import load
from myguard.audit.records import AuditFormatError
from myguard.audit.ring import RING_CAPACITY, replay
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
    read_header,
    record_hash,
    segment_name,
    split_payload,
    write_all,
)

_chain = load("auditchain")
# Held by the one process that writes a chain directory (readers ignore the file).
WRITER_LOCK = ".writer.lock"
log = logging.getLogger("myguard.audit")


@dataclass(frozen=True, slots=True)
class Repair:
    """What open() found at the end of the previous run (for the restart record)."""

    reason: str
    segment: str | None = None
    offset: int | None = None
    truncated_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Rotation:
    """A segment started under its temporary name, waiting for :meth:`SegmentAppender.seal`."""

    old_fd: int  # the segment before it (-1: none), closed by seal
    old_end: int  # where its records end (zeros may follow); -1: keep it whole
    fd: int  # the new segment, which the appender keeps writing
    tmp: Path
    path: Path


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_directory(directory: Path) -> int:
    """Hold ``directory``'s writer lock (an flock the kernel drops when the process ends);
    OSError EBUSY when another writer holds it: two would interleave their chains, and
    share one ring."""
    fd = os.open(directory / WRITER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OSError(
            errno.EBUSY, "another process writes this audit directory (one writer each)"
        ) from None
    return fd


# A disk writes whole sectors: one a power cut kept from the disk reads as zeros.
_SECTOR = 512


def _unwritten_sector(data: bytes, start: int, length: int) -> bool:
    """Does ``data[start : start + length]`` hold an aligned sector of zeros? In a segment
    filled with zeros ahead of its records, that is how a power cut during a sync leaves
    its records: some sectors on the disk, others not. Cut off there, as a torn write: the
    chain cannot tell that from records removed at its end either, while changed bytes
    stay damage."""
    first = -(-start // _SECTOR) * _SECTOR
    zeros = bytes(_SECTOR)
    return any(
        data[at : at + _SECTOR] == zeros
        for at in range(first, start + length - _SECTOR + 1, _SECTOR)
    )


def _tmp_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


class SegmentAppender:
    def __init__(self, directory: Path, hmac_key: bytes | None) -> None:
        self.directory = directory
        self.key = hmac_key
        self._flags = FLAG_HMAC if hmac_key is not None else 0
        self._key_id = key_id(hmac_key)
        # The chain's end and the segment file it is written to (fd, size): compiled, as
        # every statement's record goes through its ``append``.
        self.tail = _chain.Tail(hmac_key, ZERO_HASH, 1)
        self.ring: Path | None = None  # the ring file records go through, if any
        self._lock = -1
        self.segment_path = directory
        self.segment_created = 0.0

    @property
    def fd(self) -> int:
        return self.tail.fd

    @fd.setter
    def fd(self, fd: int) -> None:
        self.tail.fd = fd

    @property
    def segment_seq(self) -> int:
        return self.tail.seq

    @segment_seq.setter
    def segment_seq(self, seq: int) -> None:
        self.tail.seq = seq

    @property
    def size(self) -> int:
        return self.tail.size

    @size.setter
    def size(self, size: int) -> None:
        self.tail.size = size

    @property
    def last_hash(self) -> bytes:
        return self.tail.last_hash

    @last_hash.setter
    def last_hash(self, value: bytes) -> None:
        self.tail.last_hash = value

    @property
    def next_record(self) -> int:
        return self.tail.next_record

    @next_record.setter
    def next_record(self, number: int) -> None:
        self.tail.next_record = number

    @classmethod
    def open(
        cls, directory: str | Path, hmac_key: bytes | None, ring: Path | None = None
    ) -> tuple[SegmentAppender, Repair | None]:
        """Open the chain in ``directory``, repairing a torn tail and renaming into place the
        segments a crash left under their temporary names; Repair is None for a new chain.
        With ``ring``, first write what a crashed writer left in it, then take records
        through a new ring in that file (``self.ring``; None when it cannot be made, e.g.
        the memory filesystem is full: records then go straight to the segment)."""
        appender = cls(Path(directory), hmac_key)
        appender.directory.mkdir(parents=True, exist_ok=True)
        appender._lock = _lock_directory(appender.directory)
        replayed = replay(ring, appender.directory) if ring is not None else 0
        repair = appender._open_chain()
        if ring is not None:
            try:
                appender.tail.attach_ring(str(ring), RING_CAPACITY)
                appender.ring = ring
            except OSError as exc:
                log.error("audit ring %s not used: %s", ring, exc)
                ring.unlink(missing_ok=True)
        if replayed and repair is not None:
            reason = f"{repair.reason}; {replayed} bytes of records written from the ring"
            repair = dataclasses.replace(repair, reason=reason)
        return appender, repair

    def _open_chain(self) -> Repair | None:
        segments = list_segments(self.directory)
        if not segments:
            self._set_aside_leftovers()
            self.seal(self.start_segment(1))
            return None
        seq, path = segments[-1]
        repair, damaged = self._resume(seq, path)
        while not damaged and (path := self._continuation(seq + 1)) is not None:
            seq += 1
            repair, damaged = self._resume(seq, path)
        self._set_aside_leftovers()
        if damaged:
            # Damage followed by more data is not a torn write: keep the file untouched as
            # evidence (verify reports it) and continue the chain in a new segment.
            self.seal(self.start_segment(seq + 1, keep_old=True))
        return repair

    def _resume(self, seq: int, path: Path) -> tuple[Repair, bool]:
        """Adopt segment ``path`` as the one being written: (what was found, damaged)."""
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
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = os.open(path, os.O_RDWR)
        self.segment_seq, self.segment_path, self.segment_created = seq, path, header.created
        self.size = end
        if damage is None:
            if len(data) > end:  # the zeros filled in ahead of the records
                os.ftruncate(self.fd, end)
            return Repair("restart"), False
        tail = data[damage.offset :].rstrip(b"\x00")
        if not damage.torn and tail and not _unwritten_sector(data, damage.offset, len(tail)):
            reason = f"damaged segment left in place: {damage.reason}"
            return Repair(reason, path.name, damage.offset), True
        # A torn tail: keep the cut bytes (without the zeros after them) beside the
        # segment, then cut them off.
        if tail:
            (path.parent / f"{path.name}.torn-{damage.offset}").write_bytes(tail)
        os.ftruncate(self.fd, damage.offset)
        os.fsync(self.fd)
        return Repair("repaired torn tail", path.name, damage.offset, len(tail)), False

    def _continuation(self, seq: int) -> Path | None:
        """Segment ``seq`` left under its temporary name, renamed into place when its header
        continues the chain where the segment being written ends; else None."""
        path = self.directory / segment_name(seq)
        tmp = _tmp_path(path)
        try:
            header = read_header(tmp)
        except (OSError, AuditFormatError):
            return None
        if (
            header.seq,
            header.first_record,
            header.prev_hash,
            header.flags & FLAG_HMAC,
            header.key_id,
        ) != (seq, self.next_record, self.last_hash, self._flags, self._key_id):
            return None
        os.fsync(self.fd)
        os.rename(tmp, path)
        _fsync_directory(self.directory)
        return path

    def _set_aside_leftovers(self) -> None:
        """Temporary segments that do not continue the chain (a power cut lost what they
        follow): removed when they hold no record, else kept aside as evidence."""
        for tmp in self.directory.glob("*.seg.tmp"):
            if not tmp.read_bytes()[HEADER_SIZE:].strip(b"\x00"):
                tmp.unlink()
                continue
            kept = tmp.with_name(f"{tmp.name[: -len('.tmp')]}.orphan-{time.time_ns()}")
            log.warning("audit segment %s does not continue the chain; kept as %s", tmp, kept)
            os.rename(tmp, kept)

    def start_segment(self, seq: int, keep_old: bool = False) -> Rotation:
        """Start segment ``seq`` under its temporary name (header written, nothing synced) and
        write on into it; :meth:`seal` must follow, and cuts the segment before it where its
        records end unless ``keep_old``. Cheap enough for the event loop."""
        self.tail.flush()  # the ring's records belong to the segment before it
        path = self.directory / segment_name(seq)
        tmp = _tmp_path(path)
        created = time.time()
        header = SegmentHeader(
            seq, self.next_record, created, self.last_hash, self._flags, self._key_id
        )
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o640)
        try:
            write_all(fd, header.encode(), 0)
        except OSError:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        rotation = Rotation(self.fd, -1 if keep_old else self.size, fd, tmp, path)
        self.fd = fd
        self.segment_seq, self.segment_path, self.segment_created = seq, path, created
        self.size = HEADER_SIZE
        return rotation

    @staticmethod
    def seal(rotation: Rotation) -> None:
        """Make the segment before ``rotation`` durable, then the new one's content, then
        rename it into place: its name is never on disk before what it links to. The old
        segment is closed last, so a seal that failed can be retried."""
        if rotation.old_fd >= 0:
            if rotation.old_end >= 0:
                os.ftruncate(rotation.old_fd, rotation.old_end)
            os.fsync(rotation.old_fd)
        if rotation.tmp.exists():  # not yet renamed by an earlier, failed attempt
            os.fsync(rotation.fd)
            os.rename(rotation.tmp, rotation.path)
        _fsync_directory(rotation.path.parent)
        if rotation.old_fd >= 0:
            os.close(rotation.old_fd)

    def append(self, body: bytes) -> None:
        """Chain, frame and write ``body``; on OSError nothing of it remains on disk."""
        self.tail.append(body)

    def close(self) -> None:
        if self.fd >= 0:
            self.tail.flush()
            os.ftruncate(self.fd, self.size)
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
        self._unlock()

    def _unlock(self) -> None:
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1

    def __del__(self) -> None:  # an appender dropped without close (a crash, in tests)
        self._unlock()
