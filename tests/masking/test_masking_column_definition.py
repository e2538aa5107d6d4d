"""ColumnDefinition41 parse/build round trips and the value classes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from myguard.protocol import column_types as ct
from myguard.protocol.column_definition import (
    ColumnDefinition,
    adjust_definition,
    build_column_definition,
    parse_column_definition,
)
from myguard.protocol.errors import ProtocolError

# What MariaDB sends for shop.customers.email (utf8mb4, VARCHAR(200)).
EMAIL = (
    b"\x03def\x04shop\x01c\tcustomers\x05email\x05email\x0c"
    b"\x2d\x00\x20\x03\x00\x00\xfd\x01\x10\x00\x00\x00"
)


def test_parse_real_packet():
    col = parse_column_definition(EMAIL)
    assert (col.schema, col.table, col.org_table, col.name) == (
        b"shop",
        b"c",
        b"customers",
        b"email",
    )
    assert col.character_set == 45 and col.column_length == 800
    assert col.type == ct.MYSQL_TYPE_VAR_STRING and col.flags == 0x1001
    assert col.value_class == ct.CLASS_STRING
    assert build_column_definition(col) == EMAIL


names = st.binary(max_size=300)


@given(
    st.builds(
        ColumnDefinition,
        catalog=names, schema=names, table=names, org_table=names, name=names, org_name=names,
        character_set=st.integers(0, 0xFFFF), column_length=st.integers(0, 0xFFFFFFFF),
        type=st.integers(0, 255), flags=st.integers(0, 0xFFFF), decimals=st.integers(0, 255),
        extra=st.binary(max_size=10),
    )
)  # fmt: skip
def test_round_trip(col):
    assert parse_column_definition(build_column_definition(col)) == col


def test_truncated_packet_is_refused():
    with pytest.raises(ProtocolError):
        parse_column_definition(EMAIL[:-5])


@pytest.mark.parametrize(
    "t,flags,charset,cls",
    [
        (ct.MYSQL_TYPE_STRING, ct.ENUM_FLAG, 45, ct.CLASS_ENUM),
        (ct.MYSQL_TYPE_STRING, ct.SET_FLAG, 45, ct.CLASS_ENUM),
        (ct.MYSQL_TYPE_VAR_STRING, 0, ct.BINARY_CHARSET, ct.CLASS_BINARY),
        (ct.MYSQL_TYPE_BLOB, 0, 45, ct.CLASS_STRING),
        (ct.MYSQL_TYPE_NEWDECIMAL, 0, 63, ct.CLASS_DECIMAL),
        (ct.MYSQL_TYPE_TIMESTAMP2, 0, 63, ct.CLASS_DATETIME),
    ],
)
def test_value_class(t, flags, charset, cls):
    assert ct.value_class(t, flags, charset) == cls


def test_adjust_definition():
    col = ColumnDefinition(character_set=45, column_length=8, flags=ct.NOT_NULL_FLAG)
    assert adjust_definition(col, max_chars=None, may_be_null=False) is col
    grown = adjust_definition(col, max_chars=16, may_be_null=True)
    assert grown.column_length == 64 and grown.flags == 0
