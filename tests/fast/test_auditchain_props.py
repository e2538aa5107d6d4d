"""Property tests of audit chaining: the compiled ``Tail`` and its pure-Python twin write
the same bytes, what they write reads back as a valid chain, and a failed write leaves
neither the file nor the tail changed. The compiled module is imported explicitly: these
tests fail, not skip, when it is not built."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from myguard._fast import twin
from myguard.audit.segment import (
    HEADER_SIZE,
    ZERO_HASH,
    iter_frames,
    record_hash,
    split_payload,
)

compiled = importlib.import_module("myguard._fast.auditchain")
python = twin("auditchain")
MODULES = pytest.mark.parametrize("module", [compiled, python], ids=["compiled", "twin"])

bodies = st.lists(st.binary(max_size=300), max_size=20)
hashes = st.binary(min_size=32, max_size=32)
keys = st.none() | st.binary(min_size=16, max_size=80)
numbers = st.integers(1, (1 << 64) - 100)


def write(module, path: Path, bodies: list[bytes], prev: bytes, number: int, key) -> tuple:
    """``bodies`` appended after a header-sized gap; (file bytes, the tail's state)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, b"\0" * HEADER_SIZE)
    try:
        tail = module.Tail(key, prev, number)
        tail.fd, tail.size = fd, HEADER_SIZE
        for body in bodies:
            tail.append(body)
        return path.read_bytes(), tail.last_hash, tail.next_record, tail.size
    finally:
        os.close(fd)


@settings(max_examples=200, deadline=None)
@given(bodies=bodies, prev=hashes, number=numbers, key=keys)
def test_compiled_and_twin_agree(
    tmp_path_factory, bodies: list[bytes], prev: bytes, number: int, key: bytes | None
) -> None:
    base = tmp_path_factory.mktemp("chain")
    written = write(compiled, base / "c", bodies, prev, number, key)
    assert written == write(python, base / "p", bodies, prev, number, key)
    assert written[3] == len(written[0])


@settings(max_examples=100, deadline=None)
@given(bodies=bodies, key=keys)
def test_frames_read_back_as_a_chain(tmp_path_factory, bodies: list[bytes], key) -> None:
    data, last, following, _ = write(
        compiled, tmp_path_factory.mktemp("chain") / "c", bodies, ZERO_HASH, 7, key
    )
    prev, number = ZERO_HASH, 7
    read = []
    for _, payload in iter_frames(data):
        link, seq, body = split_payload(payload)
        assert (link, seq) == (prev, number)
        prev, number = record_hash(payload, key), number + 1
        read.append(body)
    assert read == bodies
    assert (last, following) == (prev, number)


@MODULES
@pytest.mark.parametrize("bad", [b"", b"x" * 31, b"x" * 33])
def test_bad_previous_hash_is_refused(module, bad: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        module.Tail(None, bad, 1)


@MODULES
def test_a_failed_write_changes_nothing_and_is_cut_off_before_the_next(module, tmp_path):
    """A write that fails leaves the tail as it was; one that the file could not be cut
    back after is cut off first thing on the next append, so the chain stays whole."""
    path = tmp_path / "seg"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    reader = os.open(path, os.O_RDONLY)
    try:
        tail = module.Tail(b"k" * 32, ZERO_HASH, 1)
        tail.fd = fd
        tail.append(b"first")
        before = (tail.last_hash, tail.next_record, tail.size)
        os.pwrite(fd, b"torn bytes of a half-written record", tail.size)  # as if torn
        tail.fd = reader  # writes and truncates fail: EBADF
        with pytest.raises(OSError):
            tail.append(b"lost")
        assert (tail.last_hash, tail.next_record, tail.size) == before
        tail.fd = fd
        tail.append(b"second")
        frames = [split_payload(p) for _, p in iter_frames(b"\0" * HEADER_SIZE + path.read_bytes())]
        assert [(seq, body) for _, seq, body in frames] == [(1, b"first"), (2, b"second")]
        assert tail.size == os.fstat(fd).st_size
    finally:
        os.close(fd)
        os.close(reader)


class Syncer:
    def __init__(self) -> None:
        self.told = 0

    def written(self) -> None:
        self.told += 1


@MODULES
@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 200), min_size=1, max_size=12),
    rotate_size=st.integers(HEADER_SIZE, HEADER_SIZE + 2000),
    accepting=st.booleans(),
    old=st.booleans(),
    syncing=st.booleans(),
)
def test_offer_takes_records_until_the_writer_must_step_in(
    module, tmp_path_factory, sizes, rotate_size, accepting, old, syncing
) -> None:
    """``offer`` appends (and tells the syncer) while accepting and no rotation is due: a
    segment with a record that reached ``rotate_size`` or ``rotate_at``; otherwise it
    writes nothing and returns False."""
    path = tmp_path_factory.mktemp("offer") / "s"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, b"\0" * HEADER_SIZE)
    try:
        tail = module.Tail(None, ZERO_HASH, 1)
        tail.fd, tail.size, tail.header_size = fd, HEADER_SIZE, HEADER_SIZE
        tail.rotate_size = rotate_size
        tail.rotate_at = 0.0 if old else float("inf")
        tail.accepting = accepting
        syncer = tail.syncer = Syncer() if syncing else None
        taken = 0
        for size in sizes:
            due = tail.size > HEADER_SIZE and (old or tail.size >= rotate_size)
            before = path.read_bytes()
            took = tail.offer(b"r" * size)
            assert took == (accepting and not due)
            if took:
                taken += 1
            else:
                assert path.read_bytes() == before
            assert tail.next_record == taken + 1 and tail.size == len(path.read_bytes())
        if syncer is not None:
            assert syncer.told == taken
    finally:
        os.close(fd)


@MODULES
def test_offer_leaves_a_failed_write_to_the_writer(module, tmp_path) -> None:
    fd = os.open(tmp_path / "s", os.O_RDONLY | os.O_CREAT, 0o600)  # writes fail: EBADF
    try:
        tail = module.Tail(None, ZERO_HASH, 1)
        tail.fd, tail.accepting = fd, True
        assert tail.offer(b"record") is False
        assert (tail.size, tail.next_record) == (0, 1)
    finally:
        os.close(fd)


# --- the ring -------------------------------------------------------------------------

# Bodies big enough that a few fill a small ring: the interesting cases are its wrap and
# its limit, which small records would rarely reach.
ring_bodies = st.integers(0, 1500).map(lambda n: (bytes(range(256)) * 6)[:n])
ring_steps = st.lists(
    st.tuples(st.sampled_from(["offer", "offer", "drain", "append"]), ring_bodies),
    min_size=8,
    max_size=40,
)


def run_ring(
    module, base: Path, steps, capacity: int, key, rotate_size: int | None = None
) -> tuple:
    """``steps`` through a tail with a ring of ``capacity``: an offer the ring cannot take
    is appended, as the writer does. (segment bytes, ring file bytes, offers taken). With
    ``rotate_size``, drains zero-fill the segment ahead (``preallocate``) up to that size."""
    segment, ring = base / "segment", base / "ring"
    fd = os.open(segment, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, b"\0" * HEADER_SIZE)
    try:
        tail = module.Tail(key, ZERO_HASH, 1)
        tail.fd, tail.size, tail.header_size, tail.accepting = fd, HEADER_SIZE, HEADER_SIZE, True
        tail.seq = 3
        if rotate_size is not None:
            tail.preallocate, tail.rotate_size = True, rotate_size
        tail.attach_ring(str(ring), capacity)
        taken = []
        for step, body in steps:
            if step == "drain":
                tail.flush()
                assert tail.ring_pending == 0
            elif step == "append" or not tail.offer(body):
                size = tail.size
                tail.append(body)  # drains first: the chain's order holds in the file
                assert tail.ring_pending == 0 and segment.stat().st_size >= tail.size > size
            else:
                taken.append(body)
        ring_bytes = ring.read_bytes()
        tail.flush()
        if rotate_size is None:
            assert tail.size == segment.stat().st_size
        return segment.read_bytes(), ring_bytes, taken, tail.size
    finally:
        os.close(fd)


@settings(max_examples=150, deadline=None)
@given(steps=ring_steps, capacity=st.integers(4096, 6000), key=keys)
def test_ring_compiled_and_twin_agree_and_write_what_appending_writes(
    tmp_path_factory, steps, capacity: int, key
) -> None:
    """Through the ring (wrapping, full, drained at any point, mixed with direct appends)
    the segment ends byte for byte as if every record had been appended in order."""
    c = run_ring(compiled, tmp_path_factory.mktemp("c"), steps, capacity, key)
    p = run_ring(python, tmp_path_factory.mktemp("p"), steps, capacity, key)
    assert c == p
    bodies = [body for _, body in steps if _ != "drain"]
    plain = write(compiled, tmp_path_factory.mktemp("plain") / "s", bodies, ZERO_HASH, 1, key)
    assert c[0] == plain[0]


@settings(max_examples=100, deadline=None)
@given(
    steps=ring_steps,
    capacity=st.integers(4096, 6000),
    key=keys,
    rotate_size=st.sampled_from([HEADER_SIZE, 3000, 20_000, 1 << 30]),
)
def test_zero_filling_ahead_writes_the_same_records_and_only_zeros_after_them(
    tmp_path_factory, steps, capacity: int, key, rotate_size: int
) -> None:
    """With ``preallocate``, both twins write the same file: the records as appending
    writes them, then zeros, up to ``ZERO_AHEAD`` past the last drain and not past the
    rotation size (records past it extend the file themselves)."""
    c = run_ring(compiled, tmp_path_factory.mktemp("c"), steps, capacity, key, rotate_size)
    p = run_ring(python, tmp_path_factory.mktemp("p"), steps, capacity, key, rotate_size)
    assert c == p
    data, _, taken, end = c
    bodies = [body for _, body in steps if _ != "drain"]
    plain = write(compiled, tmp_path_factory.mktemp("plain") / "s", bodies, ZERO_HASH, 1, key)
    assert data[:end] == plain[0] and not data[end:].strip(b"\0")
    assert len(data) <= max(end, min(rotate_size, end + python.ZERO_AHEAD))
    if taken and end < rotate_size:
        assert len(data) > end  # a drain filled ahead


@MODULES
def test_a_record_across_the_ring_s_end_is_drained_whole(module, tmp_path):
    bodies = [bytes([i]) * 1500 for i in range(5)]  # the third one wraps a 4096-byte ring
    steps = [("offer", body) for body in bodies[:2]] + [("drain", b"")]
    steps += [("offer", body) for body in bodies[2:]]
    data, _, taken, _ = run_ring(module, tmp_path, steps, 4096, None)
    assert taken == bodies[:4]  # the fifth found the ring full and was appended
    frames = [split_payload(p) for _, p in iter_frames(data)]
    assert [body for _, _, body in frames] == bodies


@MODULES
def test_an_offer_into_the_ring_leaves_the_segment_alone_until_drained(module, tmp_path):
    fd = os.open(tmp_path / "segment", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        tail = module.Tail(None, ZERO_HASH, 1)
        tail.fd, tail.accepting = fd, True
        tail.attach_ring(str(tmp_path / "ring"), 4096)
        assert tail.offer(b"a record")
        assert os.fstat(fd).st_size == 0 and tail.ring_pending == tail.size > 0
        assert b"a record" in (tmp_path / "ring").read_bytes()  # in the kernel already
        tail.flush()
        assert os.fstat(fd).st_size == tail.size and tail.ring_pending == 0
    finally:
        os.close(fd)


@MODULES
def test_a_failed_drain_keeps_the_ring_and_a_later_one_writes_it(module, tmp_path):
    segment = tmp_path / "segment"
    fd = os.open(segment, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        tail = module.Tail(None, ZERO_HASH, 1)
        tail.fd, tail.accepting = fd, True
        tail.attach_ring(str(tmp_path / "ring"), 4096)
        for body in (b"one", b"two"):
            assert tail.offer(body)
        pending = tail.ring_pending
        saved = os.dup(fd)
        reader = os.open(segment, os.O_RDONLY)
        os.dup2(reader, fd)  # the segment's descriptor now refuses writes: EBADF
        with pytest.raises(OSError):
            tail.flush()
        with pytest.raises(OSError):
            tail.append(b"three")  # nothing may pass the records still in the ring
        assert tail.ring_pending == pending and segment.stat().st_size == 0
        os.dup2(saved, fd)
        os.close(saved)
        os.close(reader)
        tail.append(b"three")
        frames = [
            split_payload(p) for _, p in iter_frames(b"\0" * HEADER_SIZE + segment.read_bytes())
        ]
        assert [(n, body) for _, n, body in frames] == [(1, b"one"), (2, b"two"), (3, b"three")]
    finally:
        os.close(fd)


@MODULES
def test_a_ring_is_attached_once_and_needs_room(module, tmp_path):
    tail = module.Tail(None, ZERO_HASH, 1)
    with pytest.raises(ValueError):
        tail.attach_ring(str(tmp_path / "small"), 100)
    with pytest.raises(OSError):
        tail.attach_ring(str(tmp_path / "missing" / "ring"), 4096)
    tail.attach_ring(str(tmp_path / "ring"), 4096)
    with pytest.raises(ValueError):
        tail.attach_ring(str(tmp_path / "ring2"), 4096)
