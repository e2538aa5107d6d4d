"""Reading records back: ``iter_records`` over a directory, ``read_segment`` for one file.

``iter_records`` takes a chain directory or a root of several chains (myguard.audit.chains).

Readers are lenient where verify is strict: a torn record at the end of a segment (the
writer is mid-write, or crashed) ends that segment quietly. Damage elsewhere raises
AuditFormatError naming the segment and offset; run verify for the full diagnosis.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from myguard.audit.chains import Chain, find_chains, location, merge_by_time
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


def decode_frames(data: bytes, start: int, segment: str, chain: str = "") -> Iterator[AuditRecord]:
    """Records in ``data`` from ``start``; stops quietly at a torn tail."""
    try:
        for offset, payload in iter_frames(data, start):
            _, seq, body = split_payload(payload)
            record = AuditRecord.decode(body)
            record.seq, record.segment, record.chain = seq, segment, chain
            record.offset, record.end = offset, offset + FRAME_HEAD.size + len(payload)
            yield record
    except FrameError as exc:
        if not exc.torn:
            raise AuditFormatError(f"{location(chain, segment)}: {exc}") from exc


def read_segment(path: str | Path, chain: str = "") -> Iterator[AuditRecord]:
    """Every record of one segment file, in order (the file is read when called);
    ``chain`` is the name given to the records."""
    path = Path(path)
    data = path.read_bytes()
    try:
        SegmentHeader.decode(data)
    except AuditFormatError as exc:
        raise AuditFormatError(f"{location(chain, path.name)}: {exc}") from exc
    return decode_frames(data, HEADER_SIZE, path.name, chain)


def iter_records(
    directory: str | Path, since: float | datetime | None = None
) -> Iterator[AuditRecord]:
    """Every record in ``directory`` (a chain, or a root of chains merged by time), oldest
    first; ``since`` skips older records (and whole segments whose successor was created
    before it)."""
    threshold = as_timestamp(since)
    yield from merge_by_time(_chain_records(chain, threshold) for chain in find_chains(directory))


def _chain_records(chain: Chain, threshold: float | None) -> Iterator[AuditRecord]:
    segments = list_segments(chain.path)
    for index, (_, path) in enumerate(segments):
        if threshold is not None and index + 1 < len(segments):
            try:
                if read_header(segments[index + 1][1]).created < threshold:
                    continue
            except (AuditFormatError, OSError):
                pass  # cannot tell: read this segment
        try:
            records = read_segment(path, chain.name)
        except FileNotFoundError:
            continue  # removed by retention since the listing
        for record in records:
            if threshold is None or record.time >= threshold:
                yield record
