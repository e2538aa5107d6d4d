"""AuditWriter modes, group commit, rotation and lifecycle."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

from myguard.audit import AuditUnavailable, AuditWriter, iter_records, statement_record, verify
from myguard.audit.segment import list_segments


@pytest.mark.parametrize("mode", ["always", "batch", "off"])
def test_concurrent_writers_all_land_in_order(tmp_path, mode, make_statement):
    async def run():
        writer = await AuditWriter.open(tmp_path, fsync=mode, rotate_bytes=4000)
        await asyncio.gather(*(writer.write(make_statement(i)) for i in range(300)))
        await writer.close()

    asyncio.run(run())
    records = list(iter_records(tmp_path))
    assert [r.get("rows_returned") for r in records] == list(range(300))
    assert len(list_segments(tmp_path)) > 1
    assert verify(tmp_path).ok


def test_batch_mode_groups_fsyncs(tmp_path, make_statement, monkeypatch):
    calls = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (calls.append(fd), real(fd)))

    async def run():
        writer = await AuditWriter.open(tmp_path, fsync="batch", batch_window=0.01)
        await asyncio.gather(*(writer.write(make_statement(i)) for i in range(200)))
        await writer.close()

    asyncio.run(run())
    assert 1 <= len(calls) <= 5


def test_off_mode_never_syncs_records(tmp_path, make_statement, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "fdatasync", lambda fd: calls.append(fd))

    async def run():
        writer = await AuditWriter.open(tmp_path, fsync="off")
        for i in range(10):
            await writer.write(make_statement(i))
        await writer.close()

    asyncio.run(run())
    assert calls == []


def test_rotation_by_age(tmp_path, make_statement):
    async def run():
        writer = await AuditWriter.open(tmp_path, fsync="off", rotate_seconds=0.05)
        await writer.write(make_statement(1))
        await asyncio.sleep(0.1)
        await writer.write(make_statement(2))
        await writer.close()

    asyncio.run(run())
    assert len(list_segments(tmp_path)) == 2
    assert verify(tmp_path).ok


def test_write_after_close_raises_and_close_is_idempotent(tmp_path, make_statement):
    async def run():
        writer = await AuditWriter.open(tmp_path)
        await writer.close()
        await writer.close()
        with pytest.raises(AuditUnavailable):
            await writer.write(make_statement(1))

    asyncio.run(run())


def test_cancelled_caller_does_not_break_the_writer(tmp_path, make_statement):
    async def run():
        writer = await AuditWriter.open(tmp_path, fsync="always")
        task = asyncio.ensure_future(writer.write(make_statement(1)))
        await asyncio.sleep(0)
        task.cancel()
        await writer.write(make_statement(2))
        await writer.close()
        assert writer.healthy

    asyncio.run(run())
    assert verify(tmp_path).ok


def test_bad_options_are_rejected(tmp_path):
    async def run():
        with pytest.raises(ValueError):
            await AuditWriter.open(tmp_path, fsync="sometimes")
        with pytest.raises(ValueError):
            await AuditWriter.open(tmp_path, rotate_bytes=0)

    asyncio.run(run())


def test_unencodable_record_fails_in_the_caller(tmp_path):
    from myguard.audit import statement_record

    async def run():
        writer = await AuditWriter.open(tmp_path)
        bad = statement_record(user="u", statement="x", decision="allow", rows_returned=object())
        with pytest.raises(TypeError):
            await writer.write(bad)
        assert writer.healthy
        await writer.close()

    asyncio.run(run())


@pytest.mark.parametrize("mode", ["always", "batch"])
def test_enqueued_records_are_synced_by_the_thread_alone(tmp_path, make_statement, mode):
    """Nobody waits on enqueued records: the writer thread syncs them within the hand-off,
    with no further call from the loop."""

    async def run():
        writer = await AuditWriter.open(tmp_path, fsync=mode)
        before = writer._syncer.syncs
        for i in range(20):
            writer.enqueue(make_statement(i).encode(False))
        for _ in range(200):
            if writer._syncer.syncs > before:
                break
            await asyncio.sleep(0.005)
        assert writer._syncer.syncs == before + 1  # one sync for the twenty
        await writer.close()

    asyncio.run(run())
    assert [r.get("rows_returned") for r in iter_records(tmp_path)][-20:] == list(range(20))


def test_a_failed_sync_of_enqueued_records_makes_the_writer_refuse(tmp_path, make_statement):
    async def run():
        writer = await AuditWriter.open(tmp_path, fsync="batch", retry_interval=60)
        read_end, write_end = os.pipe()
        try:
            writer._syncer.set_fd(read_end)  # fdatasync fails on it (EINVAL)
            writer.enqueue(make_statement(1).encode(False))
            for _ in range(200):
                if not writer.healthy:
                    break
                await asyncio.sleep(0.005)
            assert not writer.healthy
            assert "Invalid argument" in str(writer.last_error)
            with pytest.raises(AuditUnavailable):
                writer.enqueue(make_statement(2).encode(False))
        finally:
            writer._syncer.set_fd(writer._appender.fd)
            await writer.close()
            os.close(read_end)
            os.close(write_end)

    asyncio.run(run())


def test_a_second_writer_of_a_directory_is_refused_until_the_first_closes(tmp_path):
    """Two writers would interleave their chains in one segment (and share one ring): the
    second is refused, naming why, until the first is gone."""

    async def run():
        first = await AuditWriter.open(tmp_path, fsync="off")
        with pytest.raises(AuditUnavailable, match="another process writes this audit directory"):
            await AuditWriter.open(tmp_path, fsync="off")
        await first.write(statement_record(user="u", statement="SELECT 1", decision="allow"))
        await first.close()
        second = await AuditWriter.open(tmp_path, fsync="off")
        await second.close()

    asyncio.run(run())
    assert verify(tmp_path).ok


def test_a_writer_in_another_process_holds_the_directory(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import asyncio, sys
            from myguard.audit import AuditWriter
            async def main():
                await AuditWriter.open({str(tmp_path)!r}, fsync="off")
                print("open", flush=True)
                sys.stdin.readline()
            asyncio.run(main())
        """)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(AuditUnavailable, match="another process"):
            asyncio.run(AuditWriter.open(tmp_path, fsync="off"))
    finally:
        holder.kill()
        holder.wait()

    async def reopen():  # the kernel dropped the lock with the process
        await (await AuditWriter.open(tmp_path, fsync="off")).close()

    asyncio.run(reopen())
