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
