"""Segment file format (version 1): header, record frames, chain hashes, file naming.

Layout (all integers little-endian; full description in docs/audit-format.md)::

    header (80 bytes): magic "MGAUDIT\\0", u16 version, u16 flags, u64 segment number,
                       u64 first record number, f64 creation time, 32-byte previous hash,
                       8-byte key id, u32 CRC32 of the preceding 76 bytes
    frame:             u32 payload length, u32 CRC32(payload), payload
    payload:           32-byte previous record hash, u64 record number, msgpack body

The segment being written may end in zeros (filled ahead of its records so that a sync
need not grow the file): zeros where a frame should start end the records.

The record hash is SHA-256(payload), or HMAC-SHA256(key, payload) when the segment's
flags say so. Because every payload starts with the previous record's hash, changing,
removing or reordering any record breaks the link to the next one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from myguard.audit.records import AuditFormatError

MAGIC = b"MGAUDIT\x00"
VERSION = 1
FLAG_HMAC = 0x0001
ZERO_HASH = b"\x00" * 32
MAX_PAYLOAD = 16 * 1024 * 1024

_HEADER_BODY = struct.Struct("<8sHHQQd32s8s")
_HEADER_CRC = struct.Struct("<I")
HEADER_SIZE = _HEADER_BODY.size + _HEADER_CRC.size
FRAME_HEAD = struct.Struct("<II")
PAYLOAD_PREFIX = struct.Struct("<32sQ")

_NAME = re.compile(r"audit-(\d{12})\.seg")

# The ring file records pass through (audit/ring.py; written by _fast/auditchain, whose
# .pyx states the same layout): u64 words in the machine's byte order after the magic,
# data from RING_DATA on.
RING_MAGIC = b"MGRING1\x00"
# magic, capacity, segment number, epoch offset, epoch start (ring position), drained, written
RING_HEADER = struct.Struct("=8s6Q")
RING_DATA = 4096


@dataclass(frozen=True, slots=True)
class SegmentHeader:
    seq: int
    first_record: int
    created: float
    prev_hash: bytes
    flags: int = 0
    key_id: bytes = b"\x00" * 8
    version: int = VERSION

    def encode(self) -> bytes:
        body = _HEADER_BODY.pack(
            MAGIC,
            self.version,
            self.flags,
            self.seq,
            self.first_record,
            self.created,
            self.prev_hash,
            self.key_id,
        )
        return body + _HEADER_CRC.pack(zlib.crc32(body))

    @classmethod
    def decode(cls, data: bytes) -> SegmentHeader:
        """Parse the first HEADER_SIZE bytes; raises AuditFormatError."""
        if len(data) < HEADER_SIZE:
            raise AuditFormatError("segment header is incomplete")
        body = data[: _HEADER_BODY.size]
        (crc,) = _HEADER_CRC.unpack_from(data, _HEADER_BODY.size)
        magic, version, flags, seq, first, created, prev, key_id = _HEADER_BODY.unpack(body)
        if magic != MAGIC:
            raise AuditFormatError("not an audit segment (bad magic)")
        if zlib.crc32(body) != crc:
            raise AuditFormatError("segment header checksum mismatch")
        if version != VERSION:
            raise AuditFormatError(f"unsupported segment version {version}")
        return cls(seq, first, created, prev, flags, key_id, version)


class FrameError(AuditFormatError):
    """A frame that cannot be read at ``offset``; ``torn`` when it just runs past the end."""

    def __init__(self, offset: int, reason: str, torn: bool) -> None:
        super().__init__(f"{reason} at offset {offset}")
        self.offset = offset
        self.reason = reason
        self.torn = torn


def key_id(key: bytes | None) -> bytes:
    """Identifies the HMAC key in headers without revealing it (zeros: no key)."""
    if key is None:
        return b"\x00" * 8
    return hmac.digest(key, b"myguard audit key id", "sha256")[:8]


def read_key_file(path: str | Path) -> bytes:
    """An HMAC key from a file: its bytes without surrounding whitespace, at least 16."""
    key = Path(path).read_bytes().strip()
    if len(key) < 16:
        raise ValueError(f"{path}: an audit HMAC key needs at least 16 bytes")
    return key


def record_hash(payload: bytes, key: bytes | None) -> bytes:
    if key is None:
        return hashlib.sha256(payload).digest()
    return hmac.digest(key, payload, "sha256")


def encode_frame(payload: bytes) -> bytes:
    return FRAME_HEAD.pack(len(payload), zlib.crc32(payload)) + payload


def iter_frames(data: bytes, start: int = HEADER_SIZE) -> Iterator[tuple[int, bytes]]:
    """(offset, payload) for each frame from ``start``, up to the end of ``data`` or to
    zeros that fill it from where a frame should start (the unwritten end of a segment
    being written); raises FrameError at a bad frame. A bad frame is ``torn`` when it runs
    past the end, or when only zeros follow a point inside it (a write cut short, or
    still being copied in, within the zero-filled end)."""
    view = memoryview(data)
    pos = start
    size = len(data)
    while pos < size:
        if size - pos < FRAME_HEAD.size:
            if _written_end(view, pos) == pos:
                return
            raise FrameError(pos, "incomplete record header", torn=True)
        length, crc = FRAME_HEAD.unpack_from(data, pos)
        if length == crc == 0 and _written_end(view, pos) == pos:
            return
        if length < PAYLOAD_PREFIX.size or length > MAX_PAYLOAD:
            torn = _written_end(view, pos) <= pos + FRAME_HEAD.size < size
            raise FrameError(pos, f"implausible record length {length}", torn=torn)
        end = pos + FRAME_HEAD.size + length
        if end > size:
            raise FrameError(pos, "incomplete record (torn write)", torn=True)
        payload = bytes(view[pos + FRAME_HEAD.size : end])
        if zlib.crc32(payload) != crc:
            torn = _written_end(view, pos) < end
            raise FrameError(pos, "record checksum mismatch", torn=torn)
        yield pos, payload
        pos = end


def _written_end(view: memoryview, pos: int) -> int:
    """Where the zeros that end ``view`` start, looking from ``pos`` on (``pos`` when
    there is nothing but zeros from there)."""
    if view[-1]:
        return len(view)
    return pos + len(bytes(view[pos:]).rstrip(b"\0"))


def split_payload(payload: bytes) -> tuple[bytes, int, bytes]:
    """(previous hash, record number, msgpack body)."""
    prev, seq = PAYLOAD_PREFIX.unpack_from(payload)
    return prev, seq, payload[PAYLOAD_PREFIX.size :]


def write_all(fd: int, data: bytes | bytearray | memoryview, offset: int) -> None:
    """``pwrite`` all of ``data`` at ``offset`` (a write may take only part of it)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def read_header(path: Path) -> SegmentHeader:
    """The header of the segment file at ``path`` (reads only the header bytes)."""
    with open(path, "rb") as file:
        return SegmentHeader.decode(file.read(HEADER_SIZE))


def segment_name(seq: int) -> str:
    return f"audit-{seq:012d}.seg"


def segment_seq(name: str) -> int:
    """The segment number in a segment file name."""
    match = _NAME.fullmatch(name)
    if match is None:
        raise ValueError(f"not a segment file name: {name!r}")
    return int(match.group(1))


def list_segments(directory: str | Path, *, live: bool = False) -> list[tuple[int, Path]]:
    """(segment number, path) of every segment file, oldest first. ``live``: also the
    continuation a running writer still calls ``.seg.tmp`` (renamed once the segment before
    it is on disk; its records are already written)."""
    found = []
    for path in Path(directory).iterdir():
        name = path.name[: -len(".tmp")] if live and path.name.endswith(".seg.tmp") else path.name
        match = _NAME.fullmatch(name)
        if match:
            found.append((int(match.group(1)), path))
    found.sort()
    return found
