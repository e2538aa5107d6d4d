"""The audit writer thread's wait: the compiled module and its twin agree step by step, and
each syncs written records on its own, wakes for Python work and reports a failed sync. The
compiled module is imported explicitly: these tests fail, not skip, when it is not built."""

from __future__ import annotations

import errno
import importlib
import os
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from myguard._fast import twin

compiled = importlib.import_module("myguard._fast.auditsync")
python = twin("auditsync")
BOTH = pytest.mark.parametrize("impl", [compiled, python], ids=["compiled", "twin"])


@pytest.fixture
def segment(tmp_path):
    fd = os.open(tmp_path / "segment", os.O_RDWR | os.O_CREAT)
    yield fd
    os.close(fd)


def run_steps(impl, fd: int, steps: list[str]) -> list[object]:
    syncer = impl.Syncer(fd, 0.0)
    seen: list[object] = []
    for step in steps:
        if step == "wait":
            seen.append(syncer.wait(0.0))
        else:
            getattr(syncer, step)()
        seen.append(syncer.syncs)
    return seen


@settings(max_examples=200, deadline=None)
@given(steps=st.lists(st.sampled_from(["written", "notify", "wait"]), max_size=30))
def test_compiled_and_twin_agree(tmp_path_factory, steps: list[str]) -> None:
    path = tmp_path_factory.mktemp("sync") / "segment"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        assert run_steps(compiled, fd, steps) == run_steps(python, fd, steps)
    finally:
        os.close(fd)


@BOTH
def test_written_records_are_synced_after_the_linger_without_returning(impl, segment):
    syncer = impl.Syncer(segment, 0.02)
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(syncer.wait(0.5)))
    thread.start()
    started = time.monotonic()
    for _ in range(50):  # many records, one sync: the linger gathers them
        syncer.written()
    while syncer.syncs == 0 and time.monotonic() - started < 2:
        time.sleep(0.001)
    assert syncer.syncs == 1
    assert time.monotonic() - started >= 0.015
    assert results == []  # still waiting: syncing needs no Python
    syncer.notify()
    thread.join(2)
    assert results == [impl.PYTHON]


@BOTH
def test_notify_cuts_the_linger_short(impl, segment):
    syncer = impl.Syncer(segment, 5.0)
    syncer.written()
    threading.Timer(0.05, syncer.notify).start()
    started = time.monotonic()
    assert syncer.wait(10.0) == impl.PYTHON
    assert time.monotonic() - started < 2
    assert syncer.syncs == 0  # the Python side syncs what it flushes itself


@BOTH
def test_nothing_written_times_out(impl, segment):
    syncer = impl.Syncer(segment, 0.0)
    started = time.monotonic()
    assert syncer.wait(0.05) == impl.TIMEOUT
    assert time.monotonic() - started >= 0.04
    assert syncer.syncs == 0


@BOTH
def test_a_failed_sync_is_reported_with_its_errno(impl):
    read_end, write_end = os.pipe()  # fdatasync on a pipe fails with EINVAL
    try:
        syncer = impl.Syncer(read_end, 0.0)
        syncer.written()
        assert syncer.wait(1.0) == impl.FAILED
        assert syncer.error == errno.EINVAL
    finally:
        os.close(read_end)
        os.close(write_end)


@BOTH
def test_set_fd_moves_the_syncs_to_the_new_segment(impl, segment, tmp_path):
    read_end, write_end = os.pipe()
    try:
        syncer = impl.Syncer(read_end, 0.0)
        syncer.set_fd(segment)
        syncer.written()
        assert syncer.wait(0.05) == impl.TIMEOUT
        assert syncer.syncs == 1
    finally:
        os.close(read_end)
        os.close(write_end)


def ringed_tail(tmp_path, fd: int):
    """A compiled tail (the compiled syncer takes only that) with a ring, writing to ``fd``."""
    from myguard._fast import auditchain

    tail = auditchain.Tail(None, b"\0" * 32, 1)
    tail.fd, tail.accepting = fd, True
    tail.attach_ring(str(tmp_path / "ring"), 4096)
    return tail


def twin_tail(tmp_path, fd: int):
    tail = twin("auditchain").Tail(None, b"\0" * 32, 1)
    tail.fd, tail.accepting = fd, True
    tail.attach_ring(str(tmp_path / "ring"), 4096)
    return tail


TAILS = pytest.mark.parametrize(
    "impl,make_tail", [(compiled, ringed_tail), (python, twin_tail)], ids=["compiled", "twin"]
)


@TAILS
@pytest.mark.parametrize("sync", [True, False])
def test_the_ring_is_drained_at_once_and_after_the_linger(impl, make_tail, sync, tmp_path, segment):
    tail = make_tail(tmp_path, segment)
    syncer = tail.syncer = impl.Syncer(segment, 0.3, tail, sync)
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(syncer.wait(5.0)))
    thread.start()
    assert tail.offer(b"alone")
    deadline = time.monotonic() + 0.2  # well inside the linger: drained without waiting it out
    while tail.ring_pending and time.monotonic() < deadline:
        time.sleep(0.001)
    assert tail.ring_pending == 0 and os.fstat(segment).st_size == tail.size
    assert tail.offer(b"during the linger")  # the thread lingers: no kick, drained after it
    assert tail.ring_pending > 0
    deadline = time.monotonic() + 3
    while tail.ring_pending and time.monotonic() < deadline:
        time.sleep(0.005)
    assert tail.ring_pending == 0 and os.fstat(segment).st_size == tail.size
    time.sleep(0.05)
    assert syncer.syncs == (1 if sync else 0)
    assert results == []
    syncer.notify()
    thread.join(2)
    assert results == [impl.PYTHON]


@TAILS
def test_a_failed_drain_is_reported_once_and_the_ring_kept(impl, make_tail, tmp_path):
    path = tmp_path / "segment"
    path.touch()
    reader = os.open(path, os.O_RDONLY)  # pwrite fails: EBADF
    try:
        tail = make_tail(tmp_path, reader)
        syncer = tail.syncer = impl.Syncer(reader, 0.0, tail)
        assert tail.offer(b"record")
        assert syncer.wait(1.0) == impl.FAILED
        assert syncer.error == errno.EBADF
        assert tail.ring_pending > 0
        # Not again and again: the writer's recovery drains the ring on the loop.
        assert syncer.wait(0.05) == impl.TIMEOUT
    finally:
        os.close(reader)
