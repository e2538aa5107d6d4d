"""The follower sees every record, in order, across rotation, repair and retention."""

from __future__ import annotations

import asyncio

from myguard.audit import AuditWriter, Follower, follow, iter_records
from myguard.audit.segment import encode_frame, list_segments


def test_follows_across_rotation(tmp_path, make_statement):
    async def run():
        writer = await AuditWriter.open(tmp_path, fsync="off", rotate_bytes=700)
        follower = Follower(tmp_path)
        seen = []
        for i in range(60):
            await writer.write(make_statement(i))
            if i % 7 == 0:
                seen += follower.poll()
        await writer.close()
        seen += follower.poll()
        follower.close()
        return seen

    seen = asyncio.run(run())
    assert len(list_segments(tmp_path)) > 5
    assert [r.seq for r in seen] == list(range(1, 61))
    assert [r.get("rows_returned") for r in seen] == list(range(60))
    assert len({r.segment for r in seen}) == len(list_segments(tmp_path))


def test_starts_at_end_by_default_or_after_a_record(tmp_path, write_records, make_statement):
    write_records(tmp_path, [make_statement(i) for i in range(5)], rotate_bytes=300)
    at_end = Follower(tmp_path)
    records = list(iter_records(tmp_path))
    after_second = Follower(tmp_path, after=records[1])
    from_start = Follower(tmp_path, from_start=True)
    assert at_end.poll() == []
    assert [r.seq for r in after_second.poll()] == [3, 4, 5]
    assert [r.seq for r in from_start.poll()] == [1, 2, 3, 4, 5]
    write_records(tmp_path, [make_statement(9)], rotate_bytes=300)
    assert [r.type for r in at_end.poll()] == ["restart", "statement"]


def test_a_segment_still_named_tmp_counts_as_written(tmp_path, write_records, make_statement):
    """The writer renames a new segment once the one before it is on disk; a follower
    started in between must not take its records for new ones after the rename."""
    write_records(tmp_path, [make_statement(i) for i in range(5)], rotate_bytes=300)
    last = list_segments(tmp_path)[-1][1]
    last.rename(last.with_name(last.name + ".tmp"))  # as if not renamed yet
    at_end = Follower(tmp_path)
    last.with_name(last.name + ".tmp").rename(last)  # the writer's thread renames it
    assert at_end.poll() == []
    write_records(tmp_path, [make_statement(9)], rotate_bytes=300)
    assert [r.type for r in at_end.poll()] == ["restart", "statement"]


def test_a_rename_between_the_followers_two_opens_is_no_removal(
    tmp_path, write_records, make_statement, monkeypatch
):
    """The writer's rename of ``.seg.tmp`` may land after a follower missed the final name
    and before it opens the ``.tmp`` one: the segment was not removed, and what it holds
    was written before the follower started (a flaky CI run showed its restart record)."""
    write_records(tmp_path, [make_statement(i) for i in range(5)], rotate_bytes=300)
    last = list_segments(tmp_path)[-1][1]
    tmp = last.with_name(last.name + ".tmp")
    last.rename(tmp)
    real_open = open
    renamed = []

    def racing_open(path, *args):
        if path == last and not renamed:  # missed: the rename happens right after
            renamed.append(tmp.rename(last))
            raise FileNotFoundError(path)
        return real_open(path, *args)

    monkeypatch.setattr(follow, "open", racing_open, raising=False)
    at_end = Follower(tmp_path)
    assert renamed and at_end.poll() == []
    write_records(tmp_path, [make_statement(9)], rotate_bytes=300)
    assert [r.type for r in at_end.poll()] == ["restart", "statement"]


def test_half_written_record_waits_and_repair_is_followed(tmp_path, write_records, make_statement):
    write_records(tmp_path, [make_statement(1)])
    ((_, seg),) = list_segments(tmp_path)
    follower = Follower(tmp_path)
    with open(seg, "ab") as file:
        file.write(encode_frame(b"\x00" * 60)[:30])
    assert follower.poll() == []  # incomplete: not yet a record
    write_records(tmp_path, [make_statement(2)])  # reopen cuts the torn tail and continues
    assert [r.type for r in follower.poll()] == ["restart", "statement"]


def test_segments_removed_by_retention_are_skipped(tmp_path, write_records, make_statement):
    write_records(tmp_path, [make_statement(i) for i in range(20)], rotate_bytes=400)
    follower = Follower(tmp_path, from_start=True)
    segments = list_segments(tmp_path)
    for _, path in segments[:2]:
        path.unlink()
    seen = follower.poll()
    assert seen[0].segment == segments[2][1].name
    assert [r.seq for r in seen] == list(range(seen[0].seq, 21))
