"""Disk full: write() raises AuditUnavailable, healthy turns False, the writer recovers by
itself once space returns, and the chain still verifies with every acknowledged record."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import time

import pytest

from myguard._fast import twin
from myguard.audit import AuditUnavailable, AuditWriter, iter_records, statement_record, verify
from myguard.audit import appender as appender_module


class TmpfsDisk:
    """A real 1 MiB filesystem; ``fill()`` takes every free byte, ``free()`` returns them."""

    def __init__(self, root):
        self.root = root / "mnt"
        self.root.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(self.root)], capture_output=True
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount tmpfs: {result.stderr.decode().strip()}")
        self.filler = self.root / "filler"

    def fill(self):
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        finally:
            os.close(fd)

    def free(self):
        self.filler.unlink()

    def close(self):
        subprocess.run(["umount", "-l", str(self.root)], check=True)


class InjectedDisk:
    """Fault injection at the filesystem boundary: pwrite writes part, then fails ENOSPC.
    Records are written by the compiled chain tail, which calls pwrite(2) itself; here the
    appender uses its pure-Python twin (same steps) to let the fault in (the tmpfs disk
    fills up for the compiled one)."""

    def __init__(self, root, monkeypatch):
        self.root = root / "audit"
        self.full = False
        real_pwrite = os.pwrite

        def pwrite(fd, data, offset):
            if self.full:
                if len(data) > 10:
                    return real_pwrite(fd, bytes(data)[:10], offset)
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_pwrite(fd, data, offset)

        monkeypatch.setattr(appender_module.os, "pwrite", pwrite)
        monkeypatch.setattr(appender_module, "_chain", twin("auditchain"))

    def fill(self):
        self.full = True

    def free(self):
        self.full = False

    def close(self):
        pass


@pytest.fixture(params=["tmpfs", "injected"])
def disk(request, tmp_path, monkeypatch):
    made = TmpfsDisk(tmp_path) if request.param == "tmpfs" else InjectedDisk(tmp_path, monkeypatch)
    yield made
    made.close()


def record(name: str, size: int = 100):
    return statement_record(
        user="u", statement=f"SELECT '{'x' * size}'", decision="allow", session_id=name
    )


async def wait_healthy(writer, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not writer.healthy:
        assert time.monotonic() < deadline, "writer did not recover"
        await asyncio.sleep(0.02)


def test_disk_full_and_recovery(disk):
    directory = disk.root

    async def run():
        writer = await AuditWriter.open(
            directory, fsync="always", retry_interval=0.05, recovery_free_bytes=256 * 1024
        )
        for i in range(5):
            await writer.write(record(f"before-{i}"))
        disk.fill()
        with pytest.raises(AuditUnavailable):
            await writer.write(record("lost", size=20_000))  # partially written, then rolled back
        assert not writer.healthy
        assert writer.last_error.errno == errno.ENOSPC
        with pytest.raises(AuditUnavailable):
            await writer.write(record("refused"))
        assert verify(directory).ok  # nothing half-written stays behind
        await asyncio.sleep(0.2)
        assert not writer.healthy  # retries keep failing while the disk is full
        disk.free()
        await wait_healthy(writer)
        for i in range(5):
            await writer.write(record(f"after-{i}"))
        await writer.close()

    asyncio.run(run())
    report = verify(directory)
    assert report.ok, report.problem
    records = list(iter_records(directory))
    sessions = [r.get("session_id") for r in records if r.type == "statement"]
    assert sessions == [f"before-{i}" for i in range(5)] + [f"after-{i}" for i in range(5)]
    (recovered,) = [r for r in records if r.type == "restart"]
    assert "recovered" in recovered.get("reason")


def test_unwritable_directory_at_open(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")

    async def run():
        with pytest.raises(AuditUnavailable):
            await AuditWriter.open(blocker / "audit")

    asyncio.run(run())
