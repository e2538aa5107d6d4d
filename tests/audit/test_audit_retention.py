"""Retention removes or archives the oldest segments by age and size; the chain still verifies."""

from __future__ import annotations

import asyncio
import os
import time

from myguard.audit import AuditWriter, verify
from myguard.audit.retention import apply_retention
from myguard.audit.segment import list_segments


def make_chain(tmp_path, write_records, make_statement, count=40):
    write_records(tmp_path, [make_statement(i) for i in range(count)], rotate_bytes=600)
    segments = list_segments(tmp_path)
    assert len(segments) >= 5
    return segments


def age(path, days):
    stamp = time.time() - days * 86400
    os.utime(path, (stamp, stamp))


def test_by_age_removes_only_a_prefix_and_never_the_current(
    tmp_path, write_records, make_statement
):
    segments = make_chain(tmp_path, write_records, make_statement)
    for _, path in segments:
        age(path, 10)
    age(segments[2][1], 1)  # a young segment stops the run: no holes in the chain
    removed = apply_retention(tmp_path, current_seq=segments[-1][0], max_age_seconds=5 * 86400)
    assert removed == [segments[0][1], segments[1][1]]
    report = verify(tmp_path)
    assert report.ok and report.first_segment == segments[2][0]


def test_current_segment_is_kept_even_when_old(tmp_path, write_records, make_statement):
    segments = make_chain(tmp_path, write_records, make_statement)
    for _, path in segments:
        age(path, 10)
    apply_retention(tmp_path, current_seq=segments[-1][0], max_age_seconds=86400)
    assert list_segments(tmp_path) == segments[-1:]
    assert verify(tmp_path).ok


def test_by_size_into_archive(tmp_path, write_records, make_statement):
    audit, archive = tmp_path / "audit", tmp_path / "archive"
    segments = make_chain(audit, write_records, make_statement)
    budget = sum(path.stat().st_size for _, path in segments[-3:])
    removed = apply_retention(
        audit, current_seq=segments[-1][0], max_bytes=budget, archive_dir=archive
    )
    assert [p.name for p in removed] == [p.name for _, p in segments[:-3]]
    assert sorted(p.name for p in archive.iterdir()) == [p.name for p in removed]
    assert sum(p.stat().st_size for _, p in list_segments(audit)) <= budget
    assert verify(audit).ok


def test_the_zeros_ahead_of_the_current_segment_s_records_are_not_counted(
    tmp_path, write_records, make_statement
):
    """The writer fills the segment it syncs with zeros ahead of its records: a size budget
    counts where the records end, not the file (that removed old segments 1 MiB early)."""
    segments = make_chain(tmp_path, write_records, make_statement)
    current = segments[-1][1]
    records_end = current.stat().st_size
    with open(current, "ab") as f:
        f.write(bytes(1 << 20))
    budget = sum(path.stat().st_size for _, path in segments[:-1]) + records_end
    kept = apply_retention(
        tmp_path, current_seq=segments[-1][0], max_bytes=budget, current_size=records_end
    )
    assert kept == [] and list_segments(tmp_path) == segments
    removed = apply_retention(tmp_path, current_seq=segments[-1][0], max_bytes=budget)
    assert removed  # counting the file, zeros and all


def test_the_writer_counts_its_segment_s_records_not_its_zeros(tmp_path, make_statement):
    rings = tmp_path / "rings"
    rings.mkdir()

    async def write(count: int, **options) -> None:
        writer = await AuditWriter.open(tmp_path / "audit", ring_directory=rings, **options)
        for i in range(count):
            writer.enqueue(make_statement(i).encode())
        await writer.write(make_statement(count))  # all of them written
        if options.get("retention_bytes"):
            current = list_segments(tmp_path / "audit")[-1][1]
            assert current.stat().st_size >= 1 << 20  # zero-filled ahead while open
            await asyncio.sleep(0.2)  # maintenance runs at the writer's next wait
        await writer.close()

    asyncio.run(write(40, fsync="off", rotate_bytes=600))
    old = list_segments(tmp_path / "audit")
    budget = sum(p.stat().st_size for _, p in old) + 64 * 1024
    asyncio.run(
        write(20, fsync="batch", rotate_bytes=8 << 20, retention_bytes=budget,
              maintenance_interval=0.01)
    )  # fmt: skip
    assert list_segments(tmp_path / "audit")[: len(old)] == old
    assert verify(tmp_path / "audit").ok


def test_writer_applies_retention_after_rotation(tmp_path, make_statement):
    async def run():
        writer = await AuditWriter.open(
            tmp_path, fsync="off", rotate_bytes=500, retention_bytes=2000, maintenance_interval=0
        )
        for i in range(60):
            await writer.write(make_statement(i))
        await writer.close()

    asyncio.run(run())
    segments = list_segments(tmp_path)
    assert segments[0][0] > 1
    assert sum(p.stat().st_size for _, p in segments) <= 2000 + 600
    assert verify(tmp_path).ok
