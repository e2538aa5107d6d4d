"""The audit ring: records enqueued into it survive kill -9 (the next writer replays them),
land in the segment they were chained for across rotations, and wait out a full disk."""

from __future__ import annotations

import asyncio
import errno
import os
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_audit_diskfull import TmpfsDisk

from myguard.audit import AuditWriter, iter_records, statement_record, verify
from myguard.audit.ring import ring_path
from myguard.audit.segment import list_segments

# A writer that crashes with records only in its ring: no syncer drains it.
CRASH = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from myguard.audit import statement_record
    from myguard.audit.appender import SegmentAppender
    from myguard.audit.ring import ring_path

    directory, ring_dir, count = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    appender, _ = SegmentAppender.open(directory, None, ring_path(ring_dir, directory))
    appender.tail.accepting = True
    for i in range(count):
        body = statement_record(user="u", statement=f"SELECT {i}", decision="allow",
                                session_id=str(i)).encode()
        assert appender.tail.offer(body)
    print(appender.tail.ring_pending, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    """
)


def statement(name: str, size: int = 100):
    return statement_record(
        user="u", statement=f"SELECT '{'x' * size}'", decision="allow", session_id=name
    )


def sessions(directory) -> list[str]:
    return [r.get("session_id") for r in iter_records(directory) if r.type == "statement"]


def crash_with_records_in_the_ring(tmp_path, count: int):
    directory, rings = tmp_path / "audit", tmp_path / "rings"
    rings.mkdir()
    script = tmp_path / "crash.py"
    script.write_text(CRASH)
    child = subprocess.run(
        [sys.executable, str(script), str(directory), str(rings), str(count)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert child.returncode == -9, child.stderr
    assert int(child.stdout) > 0
    return directory, rings


def test_kill_minus_9_with_records_only_in_the_ring_loses_none(tmp_path):
    directory, rings = crash_with_records_in_the_ring(tmp_path, 40)
    assert sessions(directory) == []  # none reached the segment before the crash
    ring = ring_path(rings, directory)
    assert ring.exists()

    async def reopen():
        writer = await AuditWriter.open(directory, fsync="always", ring_directory=rings)
        writer.enqueue(statement("after").encode())
        await writer.close()

    asyncio.run(reopen())
    report = verify(directory)
    assert report.ok, report.problem
    assert sessions(directory) == [str(i) for i in range(40)] + ["after"]
    (restart,) = [r for r in iter_records(directory) if r.type == "restart"]
    assert "written from the ring" in restart.get("reason")
    assert not ring.exists()  # a clean close leaves nothing behind in the memory filesystem


def test_a_ring_whose_segment_is_gone_is_kept_as_evidence(tmp_path):
    directory, rings = crash_with_records_in_the_ring(tmp_path, 3)
    ((_, segment),) = list_segments(directory)
    segment.unlink()

    async def reopen():
        await (await AuditWriter.open(directory, fsync="off", ring_directory=rings)).close()

    asyncio.run(reopen())
    (kept,) = directory.glob("*.ring-*")
    assert b"SELECT 2" in kept.read_bytes()
    assert verify(directory).ok


def test_records_from_the_ring_land_in_the_segment_they_were_chained_for(tmp_path):
    """Rotations drain the ring into the segment before they start the next one."""
    directory, rings = tmp_path / "audit", tmp_path / "rings"
    rings.mkdir()

    async def run():
        writer = await AuditWriter.open(
            directory, fsync="batch", rotate_bytes=3000, ring_directory=rings
        )
        for i in range(200):
            writer.enqueue(statement(str(i)).encode())
            if i % 7 == 0:
                await asyncio.sleep(0)
        await writer.close()

    asyncio.run(run())
    report = verify(directory)
    assert report.ok, report.problem
    assert len(list_segments(directory)) > 5
    assert sessions(directory) == [str(i) for i in range(200)]


def test_enqueued_records_are_readable_at_once_when_they_come_one_by_one(tmp_path):
    directory, rings = tmp_path / "audit", tmp_path / "rings"
    rings.mkdir()

    async def run():
        writer = await AuditWriter.open(directory, fsync="batch", ring_directory=rings)
        for i in range(3):
            writer.enqueue(statement(str(i)).encode())
            deadline = time.monotonic() + 2
            while sessions(directory) != [str(n) for n in range(i + 1)]:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.001)
            # Far less than the writer's 5 ms linger: the first record of a quiet spell is
            # moved at once (what tools tailing the trail and tests reading it rely on).
            await asyncio.sleep(0.05)
        await writer.close()

    asyncio.run(run())


def test_a_full_disk_stops_the_ring_and_loses_no_accepted_record(tmp_path):
    disk = TmpfsDisk(tmp_path)
    rings = tmp_path / "rings"
    rings.mkdir()
    try:

        async def run():
            writer = await AuditWriter.open(
                disk.root,
                fsync="batch",
                retry_interval=0.05,
                recovery_free_bytes=256 * 1024,
                ring_directory=rings,
            )
            accepted = []
            for i in range(5):
                writer.enqueue(statement(f"before-{i}").encode())
                accepted.append(f"before-{i}")
            await asyncio.sleep(0.05)
            disk.fill()
            deadline = time.monotonic() + 5
            i = 0
            while writer.healthy:  # the ring takes records until the thread's drain fails
                assert time.monotonic() < deadline, "a full disk went unnoticed"
                writer.enqueue(statement(f"during-{i}", size=2000).encode())
                accepted.append(f"during-{i}")
                i += 1
                await asyncio.sleep(0.002)
            assert writer.last_error.errno == errno.ENOSPC
            assert writer.tail.ring_pending > 0
            with pytest.raises(Exception, match="unavailable"):
                writer.enqueue(statement("refused").encode())
            disk.free()
            deadline = time.monotonic() + 5
            while not writer.healthy:
                assert time.monotonic() < deadline, "writer did not recover"
                await asyncio.sleep(0.02)
            writer.enqueue(statement("after").encode())
            accepted.append("after")
            await writer.close()
            return accepted

        accepted = asyncio.run(run())
        report = verify(disk.root)
        assert report.ok, report.problem
        assert sessions(disk.root) == accepted
    finally:
        disk.close()


def test_the_ring_file_is_private_to_the_writer(tmp_path):
    directory, rings = tmp_path / "audit", tmp_path / "rings"
    rings.mkdir()

    async def run():
        writer = await AuditWriter.open(directory, ring_directory=rings)
        ring = ring_path(rings, directory)
        assert ring.stat().st_mode & 0o777 == 0o600
        magic, capacity = struct.unpack_from("=8sQ", ring.read_bytes())
        assert magic == b"MGRING1\0" and ring.stat().st_size == 4096 + capacity
        await writer.close()

    asyncio.run(run())


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no /dev/shm")
def test_ring_path_is_one_file_per_chain(tmp_path):
    shm = Path("/dev/shm")
    assert ring_path(shm, tmp_path / "a") != ring_path(shm, tmp_path / "b")
    assert ring_path(shm, tmp_path / "a") == ring_path(shm, tmp_path / "x" / ".." / "a")


def test_a_rotation_first_moves_the_ring_into_the_segment_it_ends(tmp_path):
    """The writer thread seals (fsyncs, then closes) the old segment after a rotation: what
    the ring holds for it must be in it before."""
    from myguard.audit.appender import SegmentAppender

    rings = tmp_path / "rings"
    rings.mkdir()
    appender, _ = SegmentAppender.open(
        tmp_path / "audit", None, ring_path(rings, tmp_path / "audit")
    )
    appender.tail.accepting = True
    for i in range(3):
        assert appender.tail.offer(statement(str(i)).encode())
    old_path, old_size = appender.segment_path, appender.size
    rotation = appender.start_segment(appender.segment_seq + 1)
    assert appender.tail.ring_pending == 0
    assert old_path.stat().st_size == old_size
    appender.seal(rotation)
    appender.close()
    assert sessions(tmp_path / "audit") == ["0", "1", "2"]


def _planted(rings: Path, how: str) -> None:
    private = rings / f"myguard-{os.geteuid()}"
    if how == "symlink":
        target = rings / "elsewhere"
        target.mkdir(mode=0o700)
        private.symlink_to(target)
    elif how == "open to others":
        private.mkdir()
        private.chmod(0o777)
    elif how == "another owner":
        private.mkdir(mode=0o700)
        os.chown(private, 65534, 65534)


@pytest.mark.parametrize("how", ["symlink", "open to others", "another owner"])
def test_a_ring_directory_another_user_could_plant_in_is_not_used(tmp_path, how, caplog):
    """In a shared /dev/shm, another local user could otherwise plant a ring whose records
    the next start writes into the chain, or read the records."""
    if how == "another owner" and os.geteuid() != 0:
        pytest.skip("chown needs root")
    directory, rings = tmp_path / "audit", tmp_path / "rings"
    rings.mkdir()
    _planted(rings, how)

    async def run():
        writer = await AuditWriter.open(directory, ring_directory=rings)
        assert writer.tail.ring_pending == 0
        writer.enqueue(statement("kept").encode())
        assert sessions(directory) == ["kept"]  # written into the segment on the loop
        await writer.close()

    asyncio.run(run())
    assert "audit ring not used" in caplog.text and "not a private directory" in caplog.text
    assert not list(rings.rglob("*.ring"))


def test_a_ring_is_not_replayed_over_records_written_since(tmp_path):
    """A crash, then a run without the ring that wrote on, then one with it again: the
    old ring must not overwrite what the run between wrote."""
    directory, rings = crash_with_records_in_the_ring(tmp_path, 3)

    async def without_ring():
        writer = await AuditWriter.open(directory, fsync="off")
        writer.enqueue(statement("between").encode())
        await writer.close()

    async def with_ring():
        await (await AuditWriter.open(directory, fsync="off", ring_directory=rings)).close()

    asyncio.run(without_ring())
    asyncio.run(with_ring())
    assert verify(directory).ok
    assert sessions(directory) == ["between"]
    (kept,) = directory.glob("*.ring-*")
    assert b"SELECT 2" in kept.read_bytes()


def test_a_drain_cut_short_by_the_crash_is_completed(tmp_path):
    directory, rings = crash_with_records_in_the_ring(tmp_path, 5)
    ring = ring_path(rings, directory)
    data = ring.read_bytes()
    _, capacity, _, epoch_offset, epoch_start, drained, written = struct.unpack_from("=8s6Q", data)
    assert drained == epoch_start == 0 and written > 100
    ((_, segment),) = list_segments(directory)
    with open(segment, "r+b") as file:  # the thread had written part of it when killed
        file.seek(epoch_offset)
        file.write(data[4096 : 4096 + written // 2])

    async def reopen():
        await (await AuditWriter.open(directory, fsync="off", ring_directory=rings)).close()

    asyncio.run(reopen())
    assert verify(directory).ok
    assert sessions(directory) == [str(i) for i in range(5)]
    assert not list(directory.glob("*.ring-*"))


def test_a_full_memory_filesystem_leaves_the_writer_without_a_ring(tmp_path, caplog):
    """A container's /dev/shm is often 64 MiB: a ring that does not fit must not stop
    myguard from starting."""
    small = TmpfsDisk(tmp_path)  # 1 MiB, less than a ring
    directory = tmp_path / "audit"
    try:

        async def run():
            writer = await AuditWriter.open(directory, fsync="batch", ring_directory=small.root)
            writer.enqueue(statement("kept").encode())
            assert sessions(directory) == ["kept"]  # no ring: written on the loop
            await writer.close()

        asyncio.run(run())
        assert "audit ring" in caplog.text and "not used" in caplog.text
        assert not list(small.root.rglob("*.ring"))
    finally:
        small.close()
