"""Reading records back: ``iter_records`` over a directory, ``read_segment`` for one file.

Readers are lenient where verify is strict: a torn record at the end of a segment (the
writer is mid-write, or crashed) ends that segment quietly. Damage elsewhere raises
AuditFormatError naming the segment and offset; run verify for the full diagnosis.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from myguard.audit.records import AuditFormatError, AuditRecord
from myguard.audit.segment import (
    FRAME_HEAD,
    HEADER_SIZE,
    FrameError,
    SegmentHeader,
    iter_frames,
    list_segments,
    read_header,
    split_payload,
)


def as_timestamp(when: float | datetime | None) -> float | None:
    """Unix seconds from a datetime (naive means local time) or a number."""
    if isinstance(when, datetime):
        return when.timestamp()
    return when


def decode_frames(data: bytes, start: int, segment: str) -> Iterator[AuditRecord]:
    """Records in ``data`` from ``start``; stops quietly at a torn tail."""
    try:
        for offset, payload in iter_frames(data, start):
            _, seq, body = split_payload(payload)
            record = AuditRecord.decode(body)
            record.seq, record.segment = seq, segment
            record.offset, record.end = offset, offset + FRAME_HEAD.size + len(payload)
            yield record
    except FrameError as exc:
        if not exc.torn:
            raise AuditFormatError(f"{segment}: {exc}") from exc


def read_segment(path: str | Path) -> Iterator[AuditRecord]:
    """Every record of one segment file, in order (the file is read when called)."""
    path = Path(path)
    data = path.read_bytes()
    try:
        SegmentHeader.decode(data)
    except AuditFormatError as exc:
        raise AuditFormatError(f"{path.name}: {exc}") from exc
    return decode_frames(data, HEADER_SIZE, path.name)


def iter_records(
    directory: str | Path, since: float | datetime | None = None
) -> Iterator[AuditRecord]:
    """Every record in ``directory``, oldest first; ``since`` skips older records (and whole
    segments whose successor was created before it)."""
    threshold = as_timestamp(since)
    segments = list_segments(directory)
    for index, (_, path) in enumerate(segments):
        if threshold is not None and index + 1 < len(segments):
            try:
                if read_header(segments[index + 1][1]).created < threshold:
                    continue
            except (AuditFormatError, OSError):
                pass  # cannot tell: read this segment
        try:
            records = read_segment(path)
        except FileNotFoundError:
            continue  # removed by retention since the listing
        for record in records:
            if threshold is None or record.time >= threshold:
                yield record
