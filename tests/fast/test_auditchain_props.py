"""Property tests of audit chaining: the compiled module and its pure-Python twin agree,
and what they write reads back as a valid chain. The compiled module is imported
explicitly: these tests fail, not skip, when it is not built."""

from __future__ import annotations

import importlib

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

bodies = st.lists(st.binary(max_size=300), max_size=20)
hashes = st.binary(min_size=32, max_size=32)
keys = st.none() | st.binary(min_size=16, max_size=80)
numbers = st.integers(1, (1 << 64) - 100)


@settings(max_examples=300, deadline=None)
@given(bodies=bodies, prev=hashes, number=numbers, key=keys)
def test_compiled_and_twin_agree(
    bodies: list[bytes], prev: bytes, number: int, key: bytes | None
) -> None:
    assert compiled.chain_frames(bodies, prev, number, key) == python.chain_frames(
        bodies, prev, number, key
    )


@settings(max_examples=100, deadline=None)
@given(bodies=bodies, key=keys)
def test_frames_read_back_as_a_chain(bodies: list[bytes], key: bytes | None) -> None:
    frames, last, following = compiled.chain_frames(bodies, ZERO_HASH, 7, key)
    prev, number = ZERO_HASH, 7
    read = []
    for _, payload in iter_frames(b"\0" * HEADER_SIZE + frames):
        link, seq, body = split_payload(payload)
        assert (link, seq) == (prev, number)
        prev, number = record_hash(payload, key), number + 1
        read.append(body)
    assert read == bodies
    assert (last, following) == (prev, number)


@pytest.mark.parametrize("module", [compiled, python], ids=["compiled", "twin"])
@pytest.mark.parametrize("bad", [b"", b"x" * 31, b"x" * 33])
def test_bad_previous_hash_is_refused(module, bad: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        module.chain_frames([b"a"], bad, 1, None)
