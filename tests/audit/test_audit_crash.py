"""kill -9 while writing: reopen repairs the tail, writes a restart record, loses nothing acked."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from myguard.audit import AuditWriter, iter_records, statement_record, verify
from myguard.audit.appender import SegmentAppender
from myguard.audit.segment import HEADER_SIZE, encode_frame, list_segments

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from myguard.audit import AuditWriter, statement_record

    async def worker(writer, wid):
        n = 0
        while True:
            ident = f"{wid}-{n}"
            await writer.write(statement_record(user="load", statement="SELECT " + "x" * 200,
                                                decision="allow", session_id=ident))
            sys.stdout.write(ident + "\\n")
            sys.stdout.flush()
            n += 1

    async def main():
        writer = await AuditWriter.open(sys.argv[1], fsync=sys.argv[2], rotate_bytes=40_000)
        await asyncio.gather(*(worker(writer, w) for w in range(20)))

    asyncio.run(main())
    """
)


ENQUEUE_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from myguard.audit import AuditWriter, statement_record

    async def main():
        ring = sys.argv[3] or None
        writer = await AuditWriter.open(sys.argv[1], fsync=sys.argv[2], rotate_bytes=20_000,
                                        ring_directory=ring)
        n = 0
        while True:
            ident = str(n)
            writer.enqueue(statement_record(user="load", statement="SELECT " + "x" * 200,
                                            decision="allow", session_id=ident).encode())
            sys.stdout.write(ident + "\\n")
            sys.stdout.flush()
            n += 1
            if n % 50 == 0:
                await asyncio.sleep(0)

    asyncio.run(main())
    """
)


def enqueue_then_kill(
    script, directory, mode: str, ring_directory: str, count: int = 3000
) -> list[str]:
    """Run ``script`` (ENQUEUE_CHILD or a variant) until it has acknowledged ``count``
    records, kill -9 it; the records it acknowledged."""
    child = subprocess.Popen(
        [sys.executable, str(script), str(directory), mode, ring_directory],
        stdout=subprocess.PIPE,
        text=True,
    )
    acked = []
    for line in child.stdout:
        acked.append(line.strip())
        if len(acked) >= count:
            break
    os.kill(child.pid, signal.SIGKILL)
    # Through the text wrapper: communicate() would skip the lines it has buffered.
    rest = child.stdout.read()
    child.wait()
    return acked + [line for line in rest.split("\n")[:-1] if line]


async def reopen(directory, ring_directory=None):
    writer = await AuditWriter.open(directory, fsync="always", ring_directory=ring_directory)
    await writer.close()


@pytest.mark.parametrize("mode", ["batch", "off"])
def test_kill_minus_9_under_load(tmp_path, mode):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    directory = tmp_path / "audit"
    child = subprocess.Popen(
        [sys.executable, str(script), str(directory), mode], stdout=subprocess.PIPE, text=True
    )
    acked = []
    for line in child.stdout:
        acked.append(line.strip())
        if len(acked) >= 1500:
            break
    os.kill(child.pid, signal.SIGKILL)
    rest, _ = child.communicate(timeout=10)
    # A line cut by the kill was never a complete acknowledgement.
    acked += [line for line in rest.split("\n")[:-1] if line]
    assert len(list_segments(directory)) > 1

    asyncio.run(reopen(directory))

    report = verify(directory)
    assert report.ok, report.problem
    records = list(iter_records(directory))
    assert records[-1].type == "restart"
    written = {r.get("session_id") for r in records if r.type == "statement"}
    assert set(acked) <= written


@pytest.mark.parametrize("ring", [False, True], ids=["segment", "ring"])
@pytest.mark.parametrize("mode", ["always", "batch", "off"])
def test_kill_minus_9_loses_no_enqueued_record(tmp_path, mode, ring):
    """enqueue() has nobody waiting, yet once it returned the record survives kill -9,
    also when it went into a segment the writer thread had not yet renamed into place or
    was still in the ring (the next writer replays it)."""
    script = tmp_path / "child.py"
    script.write_text(ENQUEUE_CHILD)
    directory = tmp_path / "audit"
    rings = tmp_path / "rings"
    rings.mkdir()
    ring_directory = str(rings) if ring else ""
    for _ in range(3):
        acked = enqueue_then_kill(script, directory, mode, ring_directory)
        asyncio.run(reopen(directory, ring_directory or None))

        report = verify(directory)
        assert report.ok, report.problem
        assert not list(directory.glob("*.tmp")) and not list(directory.glob("*.orphan-*"))
        records = list(iter_records(directory))
        assert records[-1].type == "restart"
        runs = [[]]  # statements between restart records, the last run's before the last
        for r in records:
            if r.type == "restart":
                runs.append([])
            elif r.type == "statement":
                runs[-1].append(r.get("session_id"))
        # This run's records: every acknowledged one, in order (perhaps more after them).
        assert runs[-2][: len(acked)] == acked
    assert len(list_segments(directory)) > 3


def _crashed_appender(directory, records):
    """An appender that rotated twice and was never sealed or closed: a crash mid-rotation."""
    appender, _ = SegmentAppender.open(directory, None)
    fds = [appender.fd]
    for i, record in enumerate(records):
        if i and i % 3 == 0:
            fds.append(appender.start_segment(appender.segment_seq + 1).fd)
        appender.append(record.encode())
    for fd in fds:
        os.close(fd)


def test_open_renames_the_segments_a_crash_left_unsealed(tmp_path, make_statement):
    _crashed_appender(tmp_path, [make_statement(i) for i in range(8)])
    assert [seq for seq, _ in list_segments(tmp_path)] == [1]
    assert len(list(tmp_path.glob("*.seg.tmp"))) == 2

    asyncio.run(reopen(tmp_path))

    assert [seq for seq, _ in list_segments(tmp_path)] == [1, 2, 3]
    assert not list(tmp_path.glob("*.tmp"))
    assert verify(tmp_path).ok
    records = list(iter_records(tmp_path))
    assert [r.get("rows_returned") for r in records[:-1]] == list(range(8))
    assert records[-1].type == "restart"


def test_a_segment_that_does_not_continue_the_chain_is_kept_aside(tmp_path, make_statement):
    """After a power cut the old segment may have lost the records the new one links to."""
    _crashed_appender(tmp_path, [make_statement(i) for i in range(5)])
    (_, first), *_ = list_segments(tmp_path)
    assert [r.get("rows_returned") for r in iter_records(tmp_path)] == [0, 1, 2]
    first.write_bytes(first.read_bytes()[:-50])  # record 2 torn: segment 2 links to nothing
    second = tmp_path / "audit-000000000002.seg.tmp"
    kept_bytes = second.read_bytes()
    (tmp_path / "audit-000000000003.seg.tmp").write_bytes(kept_bytes[:HEADER_SIZE])

    asyncio.run(reopen(tmp_path))

    assert [seq for seq, _ in list_segments(tmp_path)] == [1]
    (kept,) = tmp_path.glob("audit-000000000002.seg.orphan-*")
    assert kept.read_bytes() == kept_bytes
    assert not list(tmp_path.glob("*.tmp"))
    assert verify(tmp_path).ok
    records = list(iter_records(tmp_path))
    assert [r.get("rows_returned") for r in records[:-1]] == [0, 1]
    assert records[-1].get("reason") == "repaired torn tail"


def test_enqueue_hands_the_record_to_the_kernel_before_returning(tmp_path):
    async def run():
        writer = await AuditWriter.open(tmp_path, fsync="batch", rotate_bytes=HEADER_SIZE + 1)
        bodies = [
            statement_record(user="u", statement=f"SELECT {i}", decision="allow").encode()
            for i in range(3)
        ]
        for body in bodies:
            writer.enqueue(body)  # no await: the writer thread has had no turn
            on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("audit-*.seg*"))
            assert body in on_disk
        await writer.close()

    asyncio.run(run())
    assert len(list_segments(tmp_path)) == 3
    assert verify(tmp_path).ok


def test_torn_tail_is_cut_kept_as_evidence_and_noted(tmp_path, write_records, make_statement):
    write_records(tmp_path, [make_statement(i) for i in range(5)])
    ((_, seg),) = list_segments(tmp_path)
    intact = seg.stat().st_size
    torn = encode_frame(b"\x00" * 40 + b"half a record")[:-6]
    with open(seg, "ab") as file:
        file.write(torn)
    assert not verify(tmp_path).ok

    asyncio.run(reopen(tmp_path))

    assert verify(tmp_path).ok
    restart = list(iter_records(tmp_path))[-1]
    assert restart.type == "restart"
    assert restart.get("reason") == "repaired torn tail"
    assert (restart.get("segment"), restart.get("offset")) == (seg.name, intact)
    assert restart.get("truncated_bytes") == len(torn)
    assert (tmp_path / f"{seg.name}.torn-{intact}").read_bytes() == torn


def test_damage_before_the_tail_is_left_in_place(tmp_path, write_records, make_statement):
    """Not a torn write: the file stays as evidence and the chain continues in a new segment."""
    write_records(tmp_path, [make_statement(i) for i in range(5)])
    ((_, seg),) = list_segments(tmp_path)
    data = bytearray(seg.read_bytes())
    data[200] ^= 0xFF
    seg.write_bytes(bytes(data))

    asyncio.run(reopen(tmp_path))

    assert seg.read_bytes() == bytes(data)
    assert len(list_segments(tmp_path)) == 2
    report = verify(tmp_path)
    assert report.problem.segment == seg.name


def test_clean_reopen_writes_a_restart_record(tmp_path, write_records, make_statement):
    write_records(tmp_path, [make_statement(1)])
    asyncio.run(reopen(tmp_path))
    types = [r.type for r in iter_records(tmp_path)]
    assert types == ["statement", "restart"]
    assert verify(tmp_path).ok
