"""Length-encoded integers and strings read back as written, at every header size, and a
truncated field is a ProtocolError, never an IndexError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from myguard.protocol.codec import PayloadReader, lenenc_int, lenenc_str
from myguard.protocol.errors import ProtocolError

ints = st.one_of(
    st.integers(0, 0xFA), st.integers(0xFB, 0xFFFF), st.integers(1 << 16, (1 << 24) - 1),
    st.integers(1 << 24, (1 << 64) - 1),
)  # fmt: skip


@given(st.lists(ints, max_size=8), st.lists(st.binary(max_size=300), max_size=8))
def test_fields_read_back_as_written(numbers, strings):
    data = b"".join(map(lenenc_int, numbers)) + b"".join(map(lenenc_str, strings))
    r = PayloadReader(data)
    assert [r.lenenc_int() for _ in numbers] == numbers
    assert [r.lenenc_str() for _ in strings] == strings
    assert r.remaining() == 0


@given(ints)
def test_a_truncated_integer_is_a_protocol_error(number):
    field = lenenc_int(number)
    for cut in range(len(field)):
        with pytest.raises(ProtocolError):
            PayloadReader(field[:cut]).lenenc_int()


@given(st.binary(max_size=300))
def test_a_truncated_string_is_a_protocol_error(value):
    field = lenenc_str(value)
    for cut in range(len(field)):
        with pytest.raises(ProtocolError):
            PayloadReader(field[:cut]).lenenc_str()


def test_bad_first_byte_is_refused():
    with pytest.raises(ProtocolError, match="0xff"):
        PayloadReader(b"\xff").lenenc_int()
