"""kill -9 while writing: reopen repairs the tail, writes a restart record, loses nothing acked."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from myguard.audit import AuditWriter, iter_records, verify
from myguard.audit.segment import encode_frame, list_segments

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


async def reopen(directory):
    writer = await AuditWriter.open(directory, fsync="always")
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
