"""The audit ring's file: where it lives, and replaying what a crashed writer left in it.

Records nobody waits on are copied into a ring mapped from a file on a memory filesystem
(``/dev/shm`` by default) and moved into the segment by the writer thread
(``_fast/auditchain``). The ring lives in the kernel, so a crash of the process loses
none of them; a crash of the machine loses them together with what was not yet
fdatasync'd, as without the ring. The next writer of the directory replays the ring
before it reads the chain.

A memory filesystem like ``/dev/shm`` is shared by every local user. Rings live in a
directory of their own inside it (``myguard-<uid>``, mode 0700, owned by myguard's user):
another user who could plant a ring could feed forged records into the chain at replay,
or read the records. A directory that is not private is not used (no ring, an error logged).
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from pathlib import Path

from myguard.audit.segment import RING_DATA, RING_HEADER, RING_MAGIC, segment_name, write_all

log = logging.getLogger("myguard.audit")

# Room for about 10,000 statement records: a disk that stalls for a second at 10k
# statements/s fills it, and then records go straight to the segment on the loop.
RING_CAPACITY = 4 * 1024 * 1024


def ring_path(ring_directory: Path, audit_directory: Path) -> Path:
    """The ring of the chain in ``audit_directory`` (one writer per directory), in this
    user's private directory under ``ring_directory``, made if missing. OSError when that
    directory is not private (another owner, a symbolic link, open to others)."""
    private = ring_directory / f"myguard-{os.geteuid()}"
    try:
        private.mkdir(mode=0o700)
    except FileExistsError:
        pass
    found = private.lstat()
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.geteuid() or found.st_mode & 0o077:
        raise PermissionError(
            f"{private} is not a private directory of this user (mode 0700, not a link); "
            "refusing to keep audit records there"
        )
    digest = hashlib.sha256(str(audit_directory.resolve()).encode()).hexdigest()[:16]
    return private / f"audit-{digest}.ring"


def replay(path: Path, directory: Path) -> int:
    """Write the records the ring at ``path`` holds but its writer never moved into the
    segment in ``directory``; the bytes written (0: no ring, or nothing left in it). A
    ring that does not continue its segment (gone, too short, or written on since) is
    kept beside the chain as evidence."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    if len(data) < RING_HEADER.size or data[:8] != RING_MAGIC:
        log.error("audit ring %s is not a ring; left alone", path)
        return 0
    _, capacity, seq, epoch_offset, epoch_start, drained, written = RING_HEADER.unpack_from(data)
    pending = written - drained
    if pending == 0:
        return 0
    if not 0 < pending <= capacity or len(data) < RING_DATA + capacity:
        log.error("audit ring %s is inconsistent; left alone", path)
        return 0
    at = drained % capacity
    ring = data[RING_DATA : RING_DATA + capacity]
    records = (ring[at:] + ring[:at])[:pending]
    offset = epoch_offset + drained - epoch_start
    segment = directory / segment_name(seq)
    if not segment.exists():
        segment = segment.with_name(segment.name + ".tmp")
    try:
        fd = os.open(segment, os.O_RDWR)
    except FileNotFoundError:
        fd = -1
    try:
        # The segment must end where the ring starts, or inside what it holds with the same
        # bytes (a drain cut short), but for the zeros filled in ahead of its records:
        # anything else was written after the crash without the ring, and writing over it
        # would destroy records.
        size = os.fstat(fd).st_size if fd >= 0 else -1
        found = os.pread(fd, size - offset, offset).rstrip(b"\x00") if offset <= size else None
        if found is None or len(found) > pending or found != records[: len(found)]:
            kept = directory / f"{segment_name(seq)}.ring-{offset}-{time.time_ns()}"
            kept.write_bytes(records)
            log.error("audit ring %s does not continue its segment; records kept as %s", path, kept)
            return 0
        write_all(fd, records, offset)
        os.fsync(fd)
    finally:
        if fd >= 0:
            os.close(fd)
    log.warning("audit: wrote %d bytes of records a crashed writer left in %s", pending, path)
    return pending
