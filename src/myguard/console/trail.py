"""The audit trail as the console reads it: newest first, filtered, paged; one record by
its place; counts over time; the chain's verification.

Paging uses what the readers already have, so a page costs what it reads, not the
size of the trail: each chain's segment files in order, and in each segment the byte
offset of every frame (found once per segment by walking its frame headers and
checksums, cached; a growing segment is walked on from where the walk stopped). A page
reads each chain backwards from a cursor (the segment and offset of the next record),
merging chains by time, and stops after ``limit`` matches or ``budget`` records read;
the cursor then says where to go on. Time ranges skip whole segments by their headers'
creation times, as ``iter_records`` does.

Counts over time are kept per segment (per hour, per user and per user and table) and
computed once per segment, so charts over a long trail read each segment once.

Files are read through mmap: the page cache serves them, nothing is copied whole.
"""

from __future__ import annotations

import bisect
import mmap
import re
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from myguard.audit.chains import Chain, find_chains
from myguard.audit.records import AuditFormatError, AuditRecord
from myguard.audit.segment import (
    FRAME_HEAD,
    HEADER_SIZE,
    FrameError,
    iter_frames,
    list_segments,
    read_header,
    split_payload,
)
from myguard.audit.verify import VerifyReport, verify

SEGMENT_NAME = re.compile(r"audit-\d{12}\.seg")
CHAIN_NAME = re.compile(r"[A-Za-z0-9_.-]{0,64}")
HOUR = 3600.0
# A record is written just after its segment's header; allow for clocks and queues.
_CREATED_SLACK = 60.0


class BadCursor(ValueError):
    """A cursor that this trail did not hand out."""


@dataclass(frozen=True, slots=True)
class Query:
    user: str | None = None
    group: str | None = None
    table: str | None = None
    decision: str | None = None
    type: str | None = None
    since: float | None = None
    until: float | None = None

    def matches(self, record: AuditRecord) -> bool:
        if self.since is not None and record.time < self.since:
            return False
        if self.until is not None and record.time > self.until:
            return False
        if self.type is not None and record.type != self.type:
            return False
        if self.user is not None and record.get("user") != self.user:
            return False
        if self.group is not None and self.group not in (record.get("groups") or ()):
            return False
        if self.decision is not None and self.decision not in (
            record.get("decision"),
            record.get("event"),
        ):
            return False
        if self.table is not None:
            wanted = self.table
            tables = [*(record.get("tables_read") or ()), *(record.get("tables_written") or ())]
            if not any(t == wanted or t.rsplit(".", 1)[-1] == wanted for t in tables):
                return False
        return True


@dataclass(slots=True)
class Page:
    records: list[AuditRecord]
    # Where the next (older) page starts; None when the trail has nothing older.
    cursor: str | None
    # Records read to find this page.
    scanned: int
    # The read stopped at the budget before finding ``limit`` matches: the cursor goes on
    # searching older records, back from ``searched_to``.
    budget_spent: bool = False
    searched_to: float | None = None


@dataclass(slots=True)
class _SegmentIndex:
    size: int = HEADER_SIZE
    offsets: array = field(default_factory=lambda: array("Q"))
    damaged: str | None = None


@dataclass(slots=True)
class Counts:
    """Statements per hour: by user, and by user and table (for per-table charts of
    what one user may see)."""

    size: int = HEADER_SIZE
    by_user: Counter = field(default_factory=Counter)  # (hour, user) -> n
    by_table: Counter = field(default_factory=Counter)  # (hour, user, table) -> n
    first: float | None = None
    last: float | None = None


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: list[int]


@dataclass(frozen=True, slots=True)
class Chart:
    start: float
    step: float
    buckets: int
    series: list[Series]

    @property
    def peak(self) -> int:
        return max((max(s.values, default=0) for s in self.series), default=0)


@dataclass(slots=True)
class VerifyState:
    report: VerifyReport | None = None
    checked_at: float | None = None
    running: bool = False
    error: str | None = None


class Trail:
    """One audit directory (a chain or a root of chains), read for the console."""

    def __init__(self, directory: Path | None, hmac_key: bytes | None = None) -> None:
        self.directory = directory
        self.hmac_key = hmac_key
        self._lock = threading.Lock()
        self._index: dict[Path, _SegmentIndex] = {}
        self._counts: dict[Path, Counts] = {}
        self.verification = VerifyState()

    # -- chains and segments -------------------------------------------------------------

    def chains(self) -> list[Chain]:
        if self.directory is None or not self.directory.is_dir():
            return []
        return find_chains(self.directory)

    def _frames(self, path: Path) -> tuple[_SegmentIndex, mmap.mmap | None]:
        """The frame offsets of a segment (walked on as it grows) and its mapping."""
        try:
            with open(path, "rb") as file:
                size = file.seek(0, 2)
                mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        except FileNotFoundError:
            return _SegmentIndex(), None  # removed by retention since the listing
        with self._lock:
            index = self._index.setdefault(path, _SegmentIndex())
            if mapped is not None and size > index.size and index.damaged is None:
                try:
                    for offset, _payload in iter_frames(mapped, index.size):
                        index.offsets.append(offset)
                        index.size = offset + FRAME_HEAD.size + len(_payload)
                except FrameError as exc:
                    if not exc.torn:
                        index.damaged = str(exc)
        return index, mapped

    @staticmethod
    def _decode(mapped: mmap.mmap, offset: int, segment: str, chain: str) -> AuditRecord:
        length, _crc = FRAME_HEAD.unpack_from(mapped, offset)
        payload = mapped[offset + FRAME_HEAD.size : offset + FRAME_HEAD.size + length]
        _, seq, body = split_payload(payload)
        record = AuditRecord.decode(body)
        record.seq, record.segment, record.chain = seq, segment, chain
        record.offset, record.end = offset, offset + FRAME_HEAD.size + length
        return record

    def _backwards(
        self, chain: Chain, start: tuple[int, int] | None, query: Query
    ) -> Iterator[tuple[tuple[int, int], AuditRecord]]:
        """((segment number, offset), record) of one chain, newest first, from ``start``
        (inclusive) or the newest record; stops below ``query.since``."""
        segments = list_segments(chain.path)
        for position in range(len(segments) - 1, -1, -1):
            number, path = segments[position]
            if start is not None and number > start[0]:
                continue
            if query.until is not None:
                try:
                    if read_header(path).created > query.until + _CREATED_SLACK:
                        continue
                except (AuditFormatError, OSError):
                    pass
            index, mapped = self._frames(path)
            if mapped is None:
                continue
            try:
                offsets = index.offsets
                stop = len(offsets)
                if start is not None and number == start[0]:
                    stop = bisect.bisect_right(offsets, start[1])
                for i in range(stop - 1, -1, -1):
                    record = self._decode(mapped, offsets[i], path.name, chain.name)
                    if query.since is not None and record.time < query.since - _CREATED_SLACK:
                        return
                    yield (number, offsets[i]), record
            finally:
                mapped.close()

    # -- search --------------------------------------------------------------------------

    def search(
        self,
        query: Query,
        visible: Callable[[AuditRecord], bool],
        cursor: str | None = None,
        *,
        limit: int = 50,
        budget: int = 200_000,
    ) -> Page:
        """Records matching ``query`` that ``visible`` lets through, newest first."""
        chains = self.chains()
        starts, after = _parse_cursor(cursor, {c.name for c in chains})
        heads: dict[str, tuple[tuple[int, int], AuditRecord] | None] = {}
        streams: dict[str, Iterator[tuple[tuple[int, int], AuditRecord]]] = {}
        for chain in chains:
            if chain.name in starts and starts[chain.name] is None:
                continue  # this chain was read to its start
            streams[chain.name] = self._backwards(chain, starts.get(chain.name), query)
        scanned = 0

        def advance(name: str) -> None:
            nonlocal scanned
            while True:
                item = next(streams[name], None)
                if item is None:
                    heads[name] = None
                    return
                scanned += 1
                # A chain that appeared after the first page: only what is older than it.
                if after is not None and name not in starts and item[1].time > after:
                    continue
                heads[name] = item
                return

        for name in streams:
            advance(name)
        found: list[AuditRecord] = []
        last_time: float | None = None
        while True:
            live = [(item[1].time, name) for name, item in heads.items() if item is not None]
            if not live:
                return Page(found, None, scanned)
            if len(found) == limit or scanned >= budget:
                break
            _, name = max(live)
            _, record = heads[name]
            last_time = record.time
            if query.matches(record) and visible(record):
                found.append(record)
            advance(name)
        positions = {name: (None if item is None else item[0]) for name, item in heads.items()}
        for name, start in starts.items():
            if name not in positions:
                positions[name] = start
        return Page(
            found,
            _format_cursor(positions, last_time),
            scanned,
            budget_spent=len(found) < limit,
            searched_to=last_time,
        )

    def record(self, chain: str, segment: str, offset: int) -> AuditRecord | None:
        """The record whose frame starts at ``offset`` of ``segment`` in ``chain``."""
        if not SEGMENT_NAME.fullmatch(segment) or not CHAIN_NAME.fullmatch(chain):
            return None
        found = next((c for c in self.chains() if c.name == chain), None)
        if found is None:
            return None
        index, mapped = self._frames(found.path / segment)
        if mapped is None:
            return None
        try:
            i = bisect.bisect_left(index.offsets, offset)
            if i == len(index.offsets) or index.offsets[i] != offset:
                return None
            return self._decode(mapped, offset, segment, chain)
        finally:
            mapped.close()

    # -- counts over time ----------------------------------------------------------------

    def _segment_counts(self, chain: Chain, path: Path) -> Counts:
        index, mapped = self._frames(path)
        with self._lock:
            counts = self._counts.setdefault(path, Counts())
        if mapped is None:
            return counts
        try:
            with self._lock:
                todo = [o for o in index.offsets[bisect.bisect_left(index.offsets, counts.size) :]]
                for offset in todo:
                    record = self._decode(mapped, offset, path.name, chain.name)
                    counts.size = record.end
                    counts.first = record.time if counts.first is None else counts.first
                    counts.last = record.time
                    if record.type != "statement":
                        continue
                    hour = int(record.time // HOUR)
                    user = str(record.get("user") or "")
                    counts.by_user[hour, user] += 1
                    tables = {
                        *(record.get("tables_read") or ()),
                        *(record.get("tables_written") or ()),
                    }
                    for table in tables:
                        counts.by_table[hour, user, table] += 1
        finally:
            mapped.close()
        return counts

    def charts(
        self, since: float, until: float, only_user: str | None, top: int = 6
    ) -> tuple[Chart, Chart]:
        """Statements per user and per table between ``since`` and ``until`` (the
        ``top`` busiest of each); ``only_user``: counting that user's statements only."""
        span = max(until - since, HOUR)
        step = HOUR
        for candidate in (HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, 24 * HOUR, 7 * 24 * HOUR):
            step = candidate
            if span / candidate <= 48:
                break
        start = since - since % step
        buckets = max(1, int((until - start) // step) + 1)
        users: Counter = Counter()
        tables: Counter = Counter()
        for chain in self.chains():
            segments = list_segments(chain.path)
            for position, (_, path) in enumerate(segments):
                if position + 1 < len(segments):
                    try:
                        if read_header(segments[position + 1][1]).created < since:
                            continue
                    except (AuditFormatError, OSError):
                        pass
                try:
                    if read_header(path).created > until + _CREATED_SLACK:
                        continue
                except (AuditFormatError, OSError):
                    pass
                counts = self._segment_counts(chain, path)
                for (hour, user), n in counts.by_user.items():
                    if only_user is None or user == only_user:
                        users[hour, user] += n
                for (hour, user, table), n in counts.by_table.items():
                    if only_user is None or user == only_user:
                        tables[hour, table] += n
        return (
            _chart(users, start, step, buckets, since, until, top),
            _chart(tables, start, step, buckets, since, until, top),
        )

    # -- verification --------------------------------------------------------------------

    def verify_now(self) -> VerifyState:
        """Run ``audit verify`` over the whole directory (in the calling thread)."""
        state = self.verification
        state.running = True
        try:
            if self.directory is None:
                state.report, state.error = None, "auditing is disabled in the config"
            else:
                state.report, state.error = verify(self.directory, self.hmac_key), None
        except OSError as exc:
            state.report, state.error = None, f"cannot read {self.directory}: {exc.strerror}"
        finally:
            state.running = False
            state.checked_at = time.time()
        return state


def _chart(
    counts: Counter, start: float, step: float, buckets: int, since: float, until: float, top: int
) -> Chart:
    totals: Counter = Counter()
    rows: dict[str, list[int]] = {}
    for (hour, name), n in counts.items():
        at = hour * HOUR
        if at + HOUR <= since or at > until:
            continue
        bucket = int((at - start) // step)
        if 0 <= bucket < buckets:
            rows.setdefault(name, [0] * buckets)[bucket] += n
            totals[name] += n
    names = [name for name, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
    return Chart(start, step, buckets, [Series(name, rows[name]) for name in names])


def _format_cursor(positions: dict[str, tuple[int, int] | None], after: float | None) -> str:
    parts = [f"t={after!r}"] if after is not None else []
    for name, position in sorted(positions.items()):
        label = name or "-"
        parts.append(f"{label}=end" if position is None else f"{label}={position[0]}.{position[1]}")
    return "~".join(parts)


def _parse_cursor(
    cursor: str | None, chains: set[str]
) -> tuple[dict[str, tuple[int, int] | None], float | None]:
    if not cursor:
        return {}, None
    starts: dict[str, tuple[int, int] | None] = {}
    after: float | None = None
    try:
        for part in cursor.split("~"):
            name, sep, value = part.partition("=")
            if not sep:
                raise ValueError(part)
            if name == "t":
                after = float(value)
                continue
            name = "" if name == "-" else name
            if not CHAIN_NAME.fullmatch(name):
                raise ValueError(name)
            if value == "end":
                starts[name] = None
            else:
                seq, _, offset = value.partition(".")
                starts[name] = (int(seq), int(offset))
    except ValueError:
        raise BadCursor(f"not a cursor of this trail: {cursor[:80]!r}") from None
    return starts, after
