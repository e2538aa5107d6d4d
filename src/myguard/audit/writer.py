"""AuditWriter: the asyncio front of the audit trail, with group commit on a writer thread.

Callers encode their record on the event loop (cheap, and a bad value fails in the
caller), queue the body and await a future. One dedicated thread takes everything queued,
chains and frames it in one buffer, writes it with one pwrite and (per mode) one
fdatasync, then settles all the callers' futures with one call_soon_threadsafe. So the
loop never blocks on disk and the per-record cost is a msgpack pack and a queue put.

fsync modes (the guarantee is per record, at the moment ``write()`` returns):
  always  fdatasync before returning; the thread never waits to gather more records, so
          a lone caller pays one fsync per record and concurrent callers share one.
  batch   the same guarantee, but the thread keeps gathering records from concurrent
          callers for up to ``batch_window`` seconds while they keep arriving (at most
          0.3 ms apart), so more records share one fsync at a small latency cost.
  off     written to the OS (page cache) before returning, never fsynced.
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

from myguard.audit.appender import Repair, SegmentAppender
from myguard.audit.records import AuditRecord, restart_record
from myguard.audit.retention import apply_retention
from myguard.audit.segment import FRAME_HEAD, HEADER_SIZE, PAYLOAD_PREFIX

log = logging.getLogger("myguard.audit")

FsyncMode = Literal["always", "batch", "off"]
FSYNC_MODES: tuple[FsyncMode, ...] = ("always", "batch", "off")

_MAX_BATCH = 4096
# How long enqueued records gather on the event loop before the writer thread gets them:
# fewer, larger groups mean fewer thread wake-ups and fsyncs (each costs ~0.1-0.3 ms CPU).
_HANDOFF = 0.005
_ARRIVAL_GAP = 0.0003
FRAME_OVERHEAD = FRAME_HEAD.size + PAYLOAD_PREFIX.size
_STOP = object()


class AuditUnavailable(Exception):
    """The audit trail cannot take records now; the proxy must refuse statements."""


def _settle(futures: list[asyncio.Future[None] | None], error: str | None) -> None:
    for future in futures:
        if future is None or future.done():  # queued without a waiter, or the caller was cancelled
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(AuditUnavailable(error))


class AuditWriter:
    """Appends records to the hash-chained segment files in one directory.

    Use :meth:`open`; one writer per directory (nothing stops a second one, so don't).
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
        self._rotate_bytes = rotate_bytes
        self._rotate_seconds = rotate_seconds
        self._retention_seconds = retention_days * 86400 if retention_days is not None else None
        self._retention_bytes = retention_bytes
        self._archive_dir = archive_dir
        self._redact = redact_literals
        self._retry_interval = retry_interval
        self._recovery_free_bytes = recovery_free_bytes
        self._maintenance_interval = maintenance_interval
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._pending: list[tuple[bytes, None]] = []
        self._loop = asyncio.get_running_loop()
        self._healthy = True
        self._closing = False
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
    ) -> AuditWriter:
        """Open (or create) the chain in ``directory``, repair a torn tail after a crash and
        write a ``restart`` record when resuming. Raises AuditUnavailable if that fails.

        After a write failure the writer retries every ``retry_interval`` seconds once the
        filesystem has ``recovery_free_bytes`` free, so it does not flap at the edge of a
        full disk."""
        if fsync not in FSYNC_MODES:
            raise ValueError(f"fsync must be one of {FSYNC_MODES}, got {fsync!r}")
        for name, value in (("rotate_bytes", rotate_bytes), ("rotate_seconds", rotate_seconds)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        try:
            appender, repair = await asyncio.to_thread(SegmentAppender.open, directory, hmac_key)
        except OSError as exc:
            raise AuditUnavailable(f"cannot open audit directory {directory}: {exc}") from exc
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
        writer._thread.start()
        if repair is not None:
            try:
                await writer.write(_restart_from(repair))
            except AuditUnavailable:
                await writer.close()
                raise
        return writer

    @property
    def healthy(self) -> bool:
        """False while records cannot be written; turns True again once a retry succeeds."""
        return self._healthy

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
        """Queue an encoded record body with nobody waiting for it: the cheapest way in.

        For records that follow what they describe (a statement's completion). Bodies
        queued within ``_HANDOFF`` seconds reach the writer thread together, so the thread
        wakes once per group rather than once per record. Raises AuditUnavailable at once
        while unhealthy. Encode with ``record.encode(writer.redacts_literals)`` or a
        ``StatementEncoder``.
        """
        if self._closing:
            raise AuditUnavailable("audit writer is closed")
        if not self._healthy:
            raise AuditUnavailable(f"audit trail unavailable: {self._last_error}")
        self._pending.append((body, None))
        if len(self._pending) == 1:
            self._loop.call_later(_HANDOFF, self._hand_off)

    def _hand_off(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            self._queue.put(pending)

    def submit(self, record: AuditRecord) -> asyncio.Future[None]:
        """Queue ``record`` without waiting; the future settles when it is durable.

        For records that follow what they describe (a statement's completion in ``batch``
        mode): the caller goes on at once and group commit makes them durable within the
        batch window. Raises AuditUnavailable at once while unhealthy.
        """
        if self._closing:
            raise AuditUnavailable("audit writer is closed")
        if not self._healthy:
            raise AuditUnavailable(f"audit trail unavailable: {self._last_error}")
        future: asyncio.Future[None] = self._loop.create_future()
        self._queue.put((record.encode(self._redact), future))
        return future

    async def close(self) -> None:
        """Write everything queued, fsync, stop the thread. Further writes raise."""
        if self._closing:
            return
        self._closing = True
        self._hand_off()
        self._queue.put(_STOP)
        await asyncio.to_thread(self._thread.join)

    # --- writer thread -------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop:
            timeout = self._maintenance_interval if self._healthy else self._retry_interval
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._idle()
                continue
            if first is _STOP:
                break
            batch = list(first) if isinstance(first, list) else [first]
            stop = self._gather(batch)
            self._commit(batch)
        try:
            self._appender.close()
        except OSError as exc:
            log.error("closing audit segment failed: %s", exc)

    def _gather(self, batch: list[object]) -> bool:
        """Add what else is queued; True on stop. In batch mode keep waiting while records
        keep arriving (gaps under _ARRIVAL_GAP), up to the batch window: waiting out the
        whole window when the callers have all queued already would only add latency."""
        get = self._queue.get
        deadline = time.monotonic() + self._linger
        while len(batch) < _MAX_BATCH:
            remaining = min(deadline - time.monotonic(), _ARRIVAL_GAP)
            try:
                item = get(timeout=remaining) if remaining > 0 else get(block=False)
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            if isinstance(item, list):
                batch.extend(item)
            else:
                batch.append(item)
        return False

    def _commit(self, batch: list) -> None:
        """Write a group; callers are settled per written chunk (a rotation splits it)."""
        bodies = [body for body, _ in batch]
        futures = [future for _, future in batch]
        done = 0
        while done < len(bodies):
            count, error = self._append(bodies[done:])
            settled = futures[done:] if error else futures[done : done + count]
            if any(f is not None for f in settled):
                try:
                    self._loop.call_soon_threadsafe(_settle, settled, error)
                except RuntimeError:
                    return  # the loop is gone: nobody is waiting any more
            if error:
                return
            done += count

    def _append(self, bodies: list[bytes]) -> tuple[int, str | None]:
        """Write as many of ``bodies`` as fit in the current segment (rotating first when it
        is due, at least one). Returns (count written, error message or None)."""
        appender = self._appender
        try:
            if not self._healthy and not self._recover():
                return 0, f"audit trail unavailable: {self._last_error}"
            if appender.size > HEADER_SIZE and (
                appender.size >= self._rotate_bytes
                or time.time() - appender.segment_created >= self._rotate_seconds
            ):
                appender.rotate()
                self._next_maintenance = 0.0
            room = self._rotate_bytes - appender.size
            count = used = 0
            for body in bodies:
                used += len(body) + FRAME_OVERHEAD
                if count and used > room:
                    break
                count += 1
            appender.append(bodies[:count], self._sync)
        except OSError as exc:
            if self._healthy:
                log.error("audit trail unavailable: %s", exc)
            self._last_error = exc
            self._healthy = False
            return 0, f"audit write failed: {exc}"
        self._maintain()
        return count, None

    def _recover(self) -> bool:
        """After a failure: once there is headroom, note the outage in the chain itself."""
        stat = os.statvfs(self._appender.directory)
        if stat.f_bavail * stat.f_frsize < self._recovery_free_bytes:
            return False
        reason = f"recovered after audit write failure: {self._last_error}"
        self._appender.append([restart_record(reason=reason).encode()], self._sync)
        log.warning("audit trail recovered")
        self._healthy = True
        return True

    def _idle(self) -> None:
        if not self._healthy:
            self._append([])
        else:
            self._maintain()

    def _maintain(self) -> None:
        if self._retention_seconds is None and self._retention_bytes is None:
            return
        now = time.monotonic()
        if now < self._next_maintenance:
            return
        self._next_maintenance = now + self._maintenance_interval
        try:
            removed = apply_retention(
                self._appender.directory,
                current_seq=self._appender.segment_seq,
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
