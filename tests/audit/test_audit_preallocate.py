"""A synced segment is filled with zeros ahead of its records (so a sync need not grow the
file): readers stop at the zeros, a record still being copied in reads as torn, the zeros
are cut off at seal, close and after a crash, and never take room a full disk needs."""

from __future__ import annotations

import asyncio
import importlib
import os

import pytest
from test_audit_crash import ENQUEUE_CHILD, enqueue_then_kill
from test_audit_diskfull import TmpfsDisk
from test_audit_ring import crash_with_records_in_the_ring, sessions, statement

from myguard.audit import AuditWriter, Follower, iter_records, verify
from myguard.audit.ring import ring_path
from myguard.audit.segment import (
    FRAME_HEAD,
    HEADER_SIZE,
    ZERO_HASH,
    FrameError,
    encode_frame,
    iter_frames,
    list_segments,
)


def records_end(data: bytes) -> int:
    end = HEADER_SIZE
    for offset, payload in iter_frames(data):
        end = offset + FRAME_HEAD.size + len(payload)
    return end


def frames(*payloads: bytes) -> bytes:
    return b"".join(encode_frame(b"\x01" * 40 + p) for p in payloads)


HEAD = b"H" * HEADER_SIZE


# -- reading: where the records end ------------------------------------------------------


def test_zeros_where_a_frame_should_start_end_the_records():
    data = HEAD + frames(b"one", b"two\x00") + bytes(5000)
    assert [p[40:] for _, p in iter_frames(data)] == [b"one", b"two\x00"]
    # fewer zeros than a frame head, too
    assert len(list(iter_frames(HEAD + frames(b"one") + bytes(3)))) == 1


def test_a_record_still_being_copied_into_the_zeros_is_torn():
    whole = frames(b"x" * 300)
    data = HEAD + frames(b"one") + whole[:150] + bytes(len(whole) - 150 + 4096)
    with pytest.raises(FrameError) as caught:
        list(iter_frames(data))
    assert caught.value.torn and caught.value.reason == "record checksum mismatch"
    head_only = HEAD + frames(b"one") + whole[:3] + bytes(4096)  # a head half written
    with pytest.raises(FrameError) as caught:
        list(iter_frames(head_only))
    assert caught.value.torn


@pytest.mark.parametrize(
    "data",
    [
        # a changed byte with records after it
        HEAD + frames(b"one")[:-1] + b"?" + frames(b"two") + bytes(100),
        # a changed last byte of a segment that ends with its records (sealed)
        HEAD + frames(b"one", b"two")[:-1] + b"?",
        # zeros, then a record: a hole where records were lost
        HEAD + frames(b"one") + bytes(200) + frames(b"two") + bytes(100),
    ],
    ids=["damage-before-records", "damage-at-the-end", "a-hole"],
)
def test_damage_is_not_taken_for_the_zero_filled_end(data):
    with pytest.raises(FrameError) as caught:
        list(iter_frames(data))
    assert not caught.value.torn


# -- writing ----------------------------------------------------------------------------


def test_a_synced_segment_is_zero_filled_ahead_and_cut_where_its_records_end_at_close(
    tmp_path,
):
    directory, rings = tmp_path / "audit", tmp_path / "rings"
    rings.mkdir()

    async def run():
        writer = await AuditWriter.open(directory, fsync="batch", ring_directory=rings)
        follower = Follower(directory, from_start=True)
        for i in range(50):
            writer.enqueue(statement(str(i)).encode())
        while len(sessions(directory)) < 50:  # readers stop at the zeros
            await asyncio.sleep(0.005)
        ((_, segment),) = list_segments(directory)
        data = segment.read_bytes()
        end = records_end(data)
        assert len(data) >= end + 512 * 1024 and not data[end:].strip(b"\x00")
        assert verify(directory).ok
        assert [r.get("session_id") for r in follower.poll()] == [str(i) for i in range(50)]
        follower.close()
        await writer.close()
        return segment

    segment = asyncio.run(run())
    data = segment.read_bytes()
    assert len(data) == records_end(data)
    assert sessions(directory) == [str(i) for i in range(50)]


def test_sealed_segments_end_with_their_records_and_no_zeros_pass_the_rotation_size(
    tmp_path,
):
    directory, rings = tmp_path / "audit", tmp_path / "rings"
    rings.mkdir()

    async def run():
        writer = await AuditWriter.open(
            directory, fsync="batch", rotate_bytes=60_000, ring_directory=rings
        )
        for i in range(1200):
            writer.enqueue(statement(str(i)).encode())
            if i % 20 == 0:
                await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)  # the seals of the rotations so far
        segments = list_segments(directory)
        assert len(segments) > 2
        for _, path in segments[:-1]:
            data = path.read_bytes()
            assert len(data) == records_end(data), path.name
        live = segments[-1][1].read_bytes()
        assert len(live) <= max(60_000, records_end(live))
        await writer.close()

    asyncio.run(run())
    assert verify(directory).ok
    assert sessions(directory) == [str(i) for i in range(1200)]


def test_without_syncs_nothing_is_zero_filled(tmp_path):
    directory, rings = tmp_path / "audit", tmp_path / "rings"
    rings.mkdir()

    async def run():
        writer = await AuditWriter.open(directory, fsync="off", ring_directory=rings)
        for i in range(20):
            writer.enqueue(statement(str(i)).encode())
        while len(sessions(directory)) < 20:
            await asyncio.sleep(0.005)
        ((_, segment),) = list_segments(directory)
        data = segment.read_bytes()
        assert len(data) == records_end(data)
        await writer.close()

    asyncio.run(run())


# -- crashes -------------------------------------------------------------------------------


def test_kill_minus_9_leaves_zeros_that_the_next_start_cuts_off_as_no_damage(tmp_path):
    script = tmp_path / "child.py"
    # one segment: no rotation may have just started a new one when the kill comes
    script.write_text(ENQUEUE_CHILD.replace("rotate_bytes=20_000", "rotate_bytes=64 << 20"))
    directory, rings = tmp_path / "audit", tmp_path / "rings"
    rings.mkdir()
    acked = enqueue_then_kill(script, directory, "batch", str(rings))
    ((_, segment),) = list_segments(directory)
    data = segment.read_bytes()
    assert len(data) > records_end(data)  # the zero-filled end a crash leaves

    async def reopen():
        writer = await AuditWriter.open(directory, fsync="batch", ring_directory=rings)
        await writer.close()

    asyncio.run(reopen())
    assert verify(directory).ok
    assert not list(directory.glob("*.torn-*")) and not list(directory.glob("*.ring-*"))
    restart = list(iter_records(directory))[-1]
    assert restart.type == "restart" and "torn" not in restart.get("reason")
    assert sessions(directory)[: len(acked)] == acked
    for _, path in list_segments(directory):
        data = path.read_bytes()
        assert len(data) == records_end(data), path.name


def test_the_ring_is_replayed_over_the_zero_filled_end(tmp_path):
    """The writer thread had filled zeros ahead, then the process died with records still
    in the ring: they belong right there, not aside as evidence."""
    directory, rings = crash_with_records_in_the_ring(tmp_path, 5)
    ((_, segment),) = list_segments(directory)
    with open(segment, "ab") as file:
        file.write(bytes(64 * 1024))

    async def reopen():
        await (await AuditWriter.open(directory, fsync="batch", ring_directory=rings)).close()

    asyncio.run(reopen())
    assert verify(directory).ok
    assert sessions(directory) == [str(i) for i in range(5)]
    assert not list(directory.glob("*.ring-*"))
    assert not ring_path(rings, directory).exists()


@pytest.mark.parametrize("module", ["auditchain", "auditchain_py"])
def test_zeros_that_do_not_fit_are_cut_off_and_the_records_still_written(tmp_path, module):
    """A nearly full disk: the zeros would take room the records need."""
    chain = importlib.import_module(f"myguard._fast.{module}")
    disk = TmpfsDisk(tmp_path)  # 1 MiB: less than ZERO_AHEAD
    try:
        fd = os.open(disk.root / "segment", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            tail = chain.Tail(None, ZERO_HASH, 1)
            tail.fd, tail.accepting, tail.preallocate = fd, True, True
            tail.attach_ring(str(tmp_path / "ring"), 4096)
            for body in (b"one", b"two"):
                assert tail.offer(body)
                tail.flush()
                assert os.fstat(fd).st_size == tail.size  # nothing beyond the records
            data = (disk.root / "segment").read_bytes()
            assert [p[40:] for _, p in iter_frames(data, 0)] == [b"one", b"two"]
        finally:
            os.close(fd)
    finally:
        disk.close()


def _segment_with_zero_filled_end(tmp_path, write_records, make_statement):
    directory = tmp_path / "audit"
    write_records(directory, [make_statement(i) for i in range(40)])
    ((_, segment),) = list_segments(directory)
    data = bytearray(segment.read_bytes() + bytes(8192))
    offsets = [offset for offset, _ in iter_frames(bytes(data))]
    return directory, segment, data, offsets


async def _reopen(directory):
    await (await AuditWriter.open(directory, fsync="batch")).close()


def test_a_sector_a_power_cut_kept_from_the_disk_is_cut_off_as_a_torn_write(
    tmp_path, write_records, make_statement
):
    """A power cut during a sync: of the records it was writing into the zero-filled end,
    some sectors reached the disk and others read as zeros. The records before them stay;
    from the first bad one on, the bytes are cut and kept as evidence."""
    directory, segment, data, offsets = _segment_with_zero_filled_end(
        tmp_path, write_records, make_statement
    )
    sector = (offsets[30] // 512 + 1) * 512
    data[sector : sector + 512] = bytes(512)
    segment.write_bytes(bytes(data))
    first_bad = max(offset for offset in offsets if offset < sector)

    asyncio.run(_reopen(directory))

    assert verify(directory).ok
    restart = list(iter_records(directory))[-1]
    assert restart.get("reason") == "repaired torn tail"
    assert restart.get("offset") == first_bad
    kept = (directory / f"{segment.name}.torn-{first_bad}").read_bytes()
    assert kept == bytes(data[first_bad:]).rstrip(b"\x00")
    statements = [r for r in iter_records(directory) if r.type == "statement"]
    assert len(statements) == offsets.index(first_bad)


def test_changed_bytes_before_the_zero_filled_end_stay_damage(
    tmp_path, write_records, make_statement
):
    directory, segment, data, offsets = _segment_with_zero_filled_end(
        tmp_path, write_records, make_statement
    )
    data[offsets[30] + 100] ^= 0xFF
    segment.write_bytes(bytes(data))

    asyncio.run(_reopen(directory))

    assert segment.read_bytes() == bytes(data)  # left in place, untouched
    assert len(list_segments(directory)) == 2
    assert verify(directory).problem.segment == segment.name
