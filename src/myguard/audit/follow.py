"""Follow a live audit directory like ``tail -F``: across rotation, retention and repair.

The writer only starts a new segment after it has finished writing the old one, so once
a newer segment exists the current one is complete: read it to the end, then move on. A
new segment is named ``.seg.tmp`` until the one before it is on disk, and is followed
under that name meanwhile.
A root of several chains is followed chain by chain, looking for new chains at every poll
(a worker started later writes a new one).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from myguard.audit.chains import Chain, find_chains, location, merge_by_time
from myguard.audit.records import AuditFormatError, AuditRecord
from myguard.audit.segment import (
    FRAME_HEAD,
    HEADER_SIZE,
    FrameError,
    iter_frames,
    list_segments,
    segment_name,
    segment_seq,
    split_payload,
)


class Follower:
    """Yields new records as they are written, in one chain or every chain of a root.

    Start after ``after`` (records from a reader: the last one seen of each chain; a chain
    with none is read from its start), at the oldest record (``from_start``) or, by
    default, after the last record currently written. Chains that appear later are read
    from their start.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        after: AuditRecord | Iterable[AuditRecord] | None = None,
        from_start: bool = False,
    ) -> None:
        self.directory = Path(directory)
        if isinstance(after, AuditRecord):
            after = [after]
        resume = {record.chain: record for record in after or ()}
        start = from_start or after is not None
        self._chains: dict[Path, _ChainFollower] = {
            chain.path: _ChainFollower(chain, resume.get(chain.name), start)
            for chain in find_chains(self.directory)
        }

    def poll(self) -> list[AuditRecord]:
        """Records written since the last poll, merged by time (never blocks)."""
        for chain in find_chains(self.directory):
            if chain.path not in self._chains:
                self._chains[chain.path] = _ChainFollower(chain, None, from_start=True)
        return list(merge_by_time(follower.poll() for follower in self._chains.values()))

    def follow(
        self, interval: float = 0.25, stop: Callable[[], bool] | None = None
    ) -> Iterator[AuditRecord]:
        """Blocking iterator over new records; ends when ``stop()`` returns True."""
        while stop is None or not stop():
            records = self.poll()
            yield from records
            if not records:
                time.sleep(interval)

    __iter__ = follow

    def close(self) -> None:
        for follower in self._chains.values():
            follower.close()

    def __enter__(self) -> Follower:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _ChainFollower:
    """One chain: the segment being read and the end of the last record returned."""

    def __init__(self, chain: Chain, after: AuditRecord | None, from_start: bool) -> None:
        self.directory = chain.path
        self.name = chain.name
        self._file: BinaryIO | None = None
        self._offset = HEADER_SIZE  # end of the last record returned
        segments = list_segments(self.directory, live=True)
        if after is not None:
            self._seq = segment_seq(after.segment)
            self._offset = after.end
        elif from_start or not segments:
            self._seq = segments[0][0] if segments else 1
        else:
            self._seq = segments[-1][0]
            self.poll()  # skip what is already there

    def poll(self) -> list[AuditRecord]:
        records: list[AuditRecord] = []
        while True:
            if self._file is None and not self._open_current():
                return records
            records.extend(self._read_available())
            newer = [seq for seq, _ in list_segments(self.directory, live=True) if seq > self._seq]
            if not newer:
                return records
            # The current segment is finished: drain it, then switch.
            records.extend(self._read_available())
            self._switch(min(newer))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open_current(self) -> bool:
        path = self.directory / segment_name(self._seq)
        # Still the writer's .tmp, perhaps: the rename keeps the file. It may land between
        # the first two tries, so the final name is tried again after the .tmp one.
        for candidate in (path, path.with_name(path.name + ".tmp"), path):
            try:
                self._file = open(candidate, "rb")
                break
            except FileNotFoundError:
                continue
        else:
            # Removed by retention before we got to it: continue with the next one.
            newer = [seq for seq, _ in list_segments(self.directory, live=True) if seq > self._seq]
            if newer:
                self._switch(min(newer))
                return self._open_current()
            return False
        return True

    def _switch(self, seq: int) -> None:
        self.close()
        self._seq, self._offset = seq, HEADER_SIZE

    def _read_available(self) -> list[AuditRecord]:
        # Always re-read from the end of the last complete record: a half-written record
        # is picked up whole next time, and one cut by crash repair is simply replaced.
        file = self._file
        assert file is not None
        file.seek(self._offset)
        data = file.read()
        records = []
        consumed = 0
        name = segment_name(self._seq)
        try:
            for offset, payload in iter_frames(data, 0):
                _, seq, body = split_payload(payload)
                record = AuditRecord.decode(body)
                consumed = offset + FRAME_HEAD.size + len(payload)
                record.seq, record.segment, record.chain = seq, name, self.name
                record.offset, record.end = self._offset + offset, self._offset + consumed
                records.append(record)
        except FrameError as exc:
            if not exc.torn:
                where = self._offset + exc.offset
                raise AuditFormatError(
                    f"{location(self.name, name)} at offset {where}: {exc.reason}"
                ) from exc
        self._offset += consumed
        return records
