"""AuditWriter: the asyncio front of the audit trail; a thread does the fsyncs.

Every record is chained and framed on the event loop before the call that takes it
returns, and is in the kernel by then: a crash of the process (kill -9, an abort) cannot
lose it, only a crash of the machine. ``submit`` writes (``pwrite``) into the segment.
``enqueue`` and the proxy core's records copy into the ring (``audit/ring.py``), a file
mapped from a memory filesystem, which the writer thread moves into the segment with one
``pwrite`` per batch: the loop makes no system call per statement (without a ring, or
when it is full, ``enqueue`` writes into the segment too). What may block (fsync,
renaming a new segment into place, retention) runs on one dedicated thread, which
settles the waiting callers with one ``call_soon_threadsafe`` per group. The thread waits,
drains and syncs in compiled code without the GIL (``_fast/auditsync``), so the loop
never hands the GIL over for them. Readers of the segment see an enqueued record once the
thread drained it: at once when records come one by one, within ``_HANDOFF`` under load.

fsync modes (the guarantee is per record, at the moment ``write()`` returns):
  always  fdatasync before returning; the thread never waits to gather more records, so
          a lone caller pays one fsync per record and concurrent callers share one.
  batch   the same guarantee, but the thread keeps gathering records from concurrent
          callers for up to ``batch_window`` seconds while they keep arriving (at most
          0.3 ms apart), so more records share one fsync at a small latency cost.
  off     written to the OS (page cache) before returning, never fsynced.
Records queued with ``enqueue`` (nobody waits) are fdatasync'd within ``_HANDOFF`` in
``always`` and ``batch`` mode. A write that fails in the thread (a full disk) leaves the
records in the ring and stops the writer taking more until it recovers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import queue
import threading
import time
from pathlib import Path
from typing import Literal

from myguard._fast import load
from myguard.audit.appender import Repair, Rotation, SegmentAppender
from myguard.audit.records import AuditRecord, restart_record
from myguard.audit.retention import apply_retention
from myguard.audit.ring import ring_path
from myguard.audit.segment import HEADER_SIZE

_sync = load("auditsync")
log = logging.getLogger("myguard.audit")

FsyncMode = Literal["always", "batch", "off"]
FSYNC_MODES: tuple[FsyncMode, ...] = ("always", "batch", "off")

# How long the writer thread gathers enqueued records before it syncs them: fewer fsyncs
# (each costs ~0.1-0.3 ms CPU). They are written already.
_HANDOFF = 0.005
_ARRIVAL_GAP = 0.0003
_WAKE = object()  # sync what is written (and seal rotations); nobody waits
_STOP = object()


class AuditUnavailable(Exception):
    """The audit trail cannot take records now; the proxy must refuse statements."""


def _settle(futures: list[asyncio.Future[None]], error: str | None) -> None:
    for future in futures:
        if future.done():  # the caller was cancelled
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(AuditUnavailable(error))


class AuditWriter:
    """Appends records to the hash-chained segment files in one directory.

    Use :meth:`open`; one writer per directory (a second one is refused: ``.writer.lock``).
    Records are appended on the event loop's thread only.
    """

    def __init__(
        self,
        appender: SegmentAppender,
        *,
        fsync: FsyncMode,
        rotate_bytes: int,
        rotate_seconds: float,
        retention_days: float | None,
        retention_bytes: int | None,
        archive_dir: Path | None,
        redact_literals: bool,
        batch_window: float,
        retry_interval: float,
        recovery_free_bytes: int,
        maintenance_interval: float,
    ) -> None:
        self._appender = appender
        self.fsync = fsync
        self._sync = fsync != "off"
        self._linger = batch_window if fsync == "batch" else 0.0
        self._rotate_seconds = rotate_seconds
        self._retention_seconds = retention_days * 86400 if retention_days is not None else None
        self._retention_bytes = retention_bytes
        self._archive_dir = archive_dir
        self._redact = redact_literals
        self._retry_interval = retry_interval
        self._recovery_free_bytes = recovery_free_bytes
        self._maintenance_interval = maintenance_interval
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        # Rotations not yet sealed, and the appender's fd, change together under the lock.
        self._lock = threading.Lock()
        self._rotations: list[Rotation] = []
        ringed = appender.ring is not None
        self._syncer = _sync.Syncer(
            appender.fd, _HANDOFF, appender.tail if ringed else None, self._sync
        )
        self._loop = asyncio.get_running_loop()
        # False while records cannot be written; True again once a retry succeeds. A plain
        # attribute: the proxy core reads it before every statement it forwards itself.
        self.healthy = True
        self.failures = 0  # times it stopped taking records (for /metrics)
        self._closing = False
        # The segment's tail takes records nobody waits on by itself (``offer``) while the
        # writer is healthy, open and no rotation is due; the core and enqueue use it.
        self.tail = tail = appender.tail
        tail.header_size = HEADER_SIZE
        tail.rotate_size = rotate_bytes
        tail.rotate_at = appender.segment_created + rotate_seconds
        tail.syncer = self._syncer if self._sync or ringed else None
        tail.preallocate = self._sync  # cheaper syncs; cut off again by seal and close
        tail.accepting = True
        self._recovery: asyncio.TimerHandle | None = None
        self._last_error: OSError | None = None
        self._next_maintenance = 0.0
        self._thread = threading.Thread(target=self._run, name="myguard-audit", daemon=True)

    @classmethod
    async def open(
        cls,
        directory: str | Path,
        *,
        fsync: FsyncMode = "batch",
        rotate_bytes: int = 64 * 1024 * 1024,
        rotate_seconds: float = 86400.0,
        retention_days: float | None = None,
        retention_bytes: int | None = None,
        hmac_key: bytes | None = None,
        archive_dir: str | Path | None = None,
        redact_literals: bool = False,
        batch_window: float = 0.002,
        retry_interval: float = 0.5,
        recovery_free_bytes: int = 1024 * 1024,
        maintenance_interval: float = 60.0,
        ring_directory: str | Path | None = None,
    ) -> AuditWriter:
        """Open (or create) the chain in ``directory``, repair a torn tail after a crash and
        write a ``restart`` record when resuming. Raises AuditUnavailable if that fails.

        After a write failure the writer retries every ``retry_interval`` seconds once the
        filesystem has ``recovery_free_bytes`` free, so it does not flap at the edge of a
        full disk.

        ``ring_directory`` (a memory filesystem, e.g. ``/dev/shm``): enqueued records go
        through a ring file there (see the module docstring); None writes each into the
        segment on the loop."""
        if fsync not in FSYNC_MODES:
            raise ValueError(f"fsync must be one of {FSYNC_MODES}, got {fsync!r}")
        for name, value in (("rotate_bytes", rotate_bytes), ("rotate_seconds", rotate_seconds)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        ring = None
        if ring_directory:
            try:
                ring = ring_path(Path(ring_directory), Path(directory))
            except OSError as exc:  # the ring only saves time: the trail works without it
                log.error("audit ring not used: %s", exc)
        try:
            appender, repair = await asyncio.to_thread(
                SegmentAppender.open, directory, hmac_key, ring
            )
        except OSError as exc:
            detail = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror or exc
            raise AuditUnavailable(f"cannot open audit directory {directory}: {detail}") from exc
        writer = cls(
            appender,
            fsync=fsync,
            rotate_bytes=rotate_bytes,
            rotate_seconds=rotate_seconds,
            retention_days=retention_days,
            retention_bytes=retention_bytes,
            archive_dir=Path(archive_dir) if archive_dir is not None else None,
            redact_literals=redact_literals,
            batch_window=batch_window,
            retry_interval=retry_interval,
            recovery_free_bytes=recovery_free_bytes,
            maintenance_interval=maintenance_interval,
        )
        if appender.ring is not None:
            log.info("audit records of %s go through the ring %s", directory, appender.ring)
        writer._thread.start()
        if repair is not None:
            try:
                await writer.write(_restart_from(repair))
            except AuditUnavailable:
                await writer.close()
                raise
        return writer

    @property
    def last_error(self) -> OSError | None:
        """The most recent write failure (kept after recovery, for diagnostics)."""
        return self._last_error

    @property
    def directory(self) -> Path:
        return self._appender.directory

    async def write(self, record: AuditRecord) -> None:
        """Return once ``record`` is durable per the fsync mode; raise AuditUnavailable if not."""
        await self.submit(record)

    @property
    def redacts_literals(self) -> bool:
        """Whether statement texts are stored with their literals replaced by ``?``."""
        return self._redact

    def enqueue(self, body: bytes) -> None:
        """Write an encoded record body with nobody waiting for it: the cheapest way in.

        When this returns the record is in the kernel (it survives a crash of the process);
        in ``always`` and ``batch`` mode the writer thread fdatasyncs it within ``_HANDOFF``
        seconds, together with everything else written meanwhile.
        Raises AuditUnavailable while unhealthy or when the write fails. Encode with
        ``record.encode(writer.redacts_literals)`` or a ``StatementEncoder``.
        """
        if not self.tail.offer(body):
            self._append(body)
            if self._sync:
                self._syncer.written()

    def _to_thread(self, item: object) -> None:
        self._queue.put(item)
        self._syncer.notify()

    def submit(self, record: AuditRecord) -> asyncio.Future[None]:
        """Write ``record`` now; the future settles when it is durable per the fsync mode.

        Raises AuditUnavailable at once while unhealthy or when the write fails.
        """
        self._append(record.encode(self._redact))
        future: asyncio.Future[None] = self._loop.create_future()
        if self._sync:
            self._to_thread(future)
        else:
            future.set_result(None)
        return future

    def _append(self, body: bytes) -> None:
        if self._closing:
            raise AuditUnavailable("audit writer is closed")
        if not self.healthy:
            raise AuditUnavailable(f"audit trail unavailable: {self._last_error}")
        appender = self._appender
        try:
            if self.tail.due(time.time()):
                with self._lock:
                    self._rotations.append(appender.start_segment(appender.segment_seq + 1))
                self.tail.rotate_at = appender.segment_created + self._rotate_seconds
                self._syncer.set_fd(appender.fd)
                self._to_thread(_WAKE)
            self.tail.append(body)
        except OSError as exc:
            self._fail(exc)
            raise AuditUnavailable(f"audit write failed: {exc}") from None

    async def close(self) -> None:
        """Sync everything written, stop the thread. Further writes raise."""
        if self._closing:
            return
        self._closing = True
        self.tail.accepting = False
        if self._recovery is not None:
            self._recovery.cancel()
        self._to_thread(_STOP)
        await asyncio.to_thread(self._thread.join)

    # --- failure and recovery (event loop) -------------------------------------------

    def _fail(self, exc: OSError) -> None:
        """On the loop: stop taking records and retry every ``retry_interval``."""
        if self.healthy:
            log.error("audit trail unavailable: %s", exc)
            self.failures += 1
        self._last_error = exc
        self.healthy = self.tail.accepting = False
        if self._recovery is None and not self._closing:
            self._recovery = self._loop.call_later(self._retry_interval, self._recover)

    def _recover(self) -> None:
        """Once there is headroom, note the outage in the chain itself and take records again."""
        self._recovery = None
        if self._closing:
            return
        try:
            stat = os.statvfs(self._appender.directory)
            if stat.f_bavail * stat.f_frsize >= self._recovery_free_bytes:
                reason = f"recovered after audit write failure: {self._last_error}"
                self._appender.append(restart_record(reason=reason).encode())
                log.warning("audit trail recovered")
                self.healthy = True
                self.tail.accepting = not self._closing
                self._to_thread(_WAKE)
                return
        except OSError as exc:
            self._last_error = exc
        self._recovery = self._loop.call_later(self._retry_interval, self._recover)

    # --- writer thread -------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            outcome = self._syncer.wait(self._maintenance_interval)
            if outcome == _sync.TIMEOUT:
                self._maintain()
                continue
            if outcome == _sync.FAILED:
                error = self._syncer.error
                stop = not self._report(OSError(error, os.strerror(error)))
                continue
            try:
                first = self._queue.get(block=False)
            except queue.Empty:  # taken with an earlier notification
                continue
            waiters: list[asyncio.Future[None]] = []
            stop = first is _STOP or self._gather(first, waiters)
            self._flush(waiters)
        try:
            self._appender.close()
        except OSError as exc:
            # A ring that could not be drained stays for the next writer to replay.
            log.error("closing audit segment failed: %s", exc)
            return
        if self._appender.ring is not None:
            self._appender.ring.unlink(missing_ok=True)

    def _gather(self, first: object, waiters: list[asyncio.Future[None]]) -> bool:
        """Collect the waiters queued; True on stop. In batch mode keep waiting while they
        keep arriving (gaps under _ARRIVAL_GAP), up to the batch window: waiting out the
        whole window when the callers have all queued already would only add latency."""
        get = self._queue.get
        deadline = time.monotonic() + self._linger
        item = first
        while True:
            if item is _STOP:
                return True
            if item is not _WAKE:
                waiters.append(item)
            remaining = min(deadline - time.monotonic(), _ARRIVAL_GAP)
            try:
                item = get(timeout=remaining) if remaining > 0 else get(block=False)
            except queue.Empty:
                return False

    def _flush(self, waiters: list[asyncio.Future[None]]) -> None:
        """Seal the rotations, fdatasync what was written before the waiters queued, settle
        them. Whatever they wrote is in the segment current now or in one sealed here."""
        with self._lock:
            rotations = list(self._rotations)
            fd = self._appender.fd
        error = None
        try:
            for rotation in rotations:
                self._appender.seal(rotation)
                with self._lock:
                    self._rotations.remove(rotation)
                self._next_maintenance = 0.0
            if self._sync:
                os.fdatasync(fd)
        except OSError as exc:
            error = f"audit write failed: {exc}"
            if not self._report(exc):
                return
        if waiters:
            try:
                self._loop.call_soon_threadsafe(_settle, waiters, error)
            except RuntimeError:
                return
        if error is None:
            self._maintain()

    def _report(self, exc: OSError) -> bool:
        """Tell the loop that writing failed; False when the loop is gone (nobody waits)."""
        try:
            self._loop.call_soon_threadsafe(self._fail, exc)
        except RuntimeError:
            return False
        return True

    def _maintain(self) -> None:
        if self._retention_seconds is None and self._retention_bytes is None:
            return
        now = time.monotonic()
        if now < self._next_maintenance:
            return
        self._next_maintenance = now + self._maintenance_interval
        with self._lock:  # the loop thread starts segments under it
            seq, size = self._appender.segment_seq, self._appender.size
        try:
            removed = apply_retention(
                self._appender.directory,
                current_seq=seq,
                current_size=size,
                max_age_seconds=self._retention_seconds,
                max_bytes=self._retention_bytes,
                archive_dir=self._archive_dir,
            )
        except OSError as exc:
            log.error("audit retention failed: %s", exc)
            return
        for path in removed:
            log.info("audit retention removed %s", path.name)


def _restart_from(repair: Repair) -> AuditRecord:
    return restart_record(
        reason=repair.reason,
        segment=repair.segment,
        offset=repair.offset,
        truncated_bytes=repair.truncated_bytes,
    )
