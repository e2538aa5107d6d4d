"""Mask strategies keep values valid for their type, hash deterministically, keep NULLs."""

from __future__ import annotations

import json
import struct
from datetime import date, datetime, time

import pytest

from myguard.masking.strategies import binary_cell, masked_definition, text_cell
from myguard.policy.mask_spec import MaskSpec
from myguard.protocol import column_types as ct
from myguard.protocol.column_definition import ColumnDefinition

KEY = b"test-key"
ALL = ["redact", "partial(3)", "email", "hash", "value(n/a)", "value(42)"]


def col(t: int, **kw) -> ColumnDefinition:
    return ColumnDefinition(type=t, character_set=kw.pop("character_set", 45), **kw)


def mask(spec: str, c: ColumnDefinition, value: bytes | None, key: bytes = KEY) -> bytes | None:
    return text_cell(MaskSpec.parse(spec), c, key)(value)


NUMBERS = [
    (col(ct.MYSQL_TYPE_TINY), b"-128", -128, 127),
    (col(ct.MYSQL_TYPE_TINY, flags=ct.UNSIGNED_FLAG), b"255", 0, 255),
    (col(ct.MYSQL_TYPE_SHORT), b"12345", -32768, 32767),
    (col(ct.MYSQL_TYPE_INT24), b"-8388608", -8388608, 8388607),
    (col(ct.MYSQL_TYPE_LONG), b"2147483647", -(2**31), 2**31 - 1),
    (col(ct.MYSQL_TYPE_LONGLONG, flags=ct.UNSIGNED_FLAG), b"18446744073709551615", 0, 2**64 - 1),
]


@pytest.mark.parametrize("c,value,low,high", NUMBERS)
@pytest.mark.parametrize("spec", ALL)
def test_integers_stay_in_range(c, value, low, high, spec):
    out = mask(spec, c, value)
    assert low <= int(out) <= high
    raw = binary_cell(MaskSpec.parse(spec), c, KEY)(
        int(value).to_bytes(ct.BINARY_FIXED_WIDTH[c.type], "little", signed=not c.unsigned)
    )
    assert len(raw) == ct.BINARY_FIXED_WIDTH[c.type]


def test_number_strategies():
    c = col(ct.MYSQL_TYPE_LONGLONG)
    assert mask("redact", c, b"4111111111111111") == b"0"
    assert mask("partial(4)", c, b"4111111111111111") == b"1111"
    assert mask("value(oops)", c, b"5") == b"0"  # not a number: the redact value
    assert mask("value(-7)", c, None) == b"-7"
    d = col(ct.MYSQL_TYPE_NEWDECIMAL, column_length=12, decimals=2)
    assert mask("redact", d, b"5000.00") == b"0.00"
    hashed = mask("hash", d, b"5000.00")
    whole, frac = hashed.split(b".")
    assert len(frac) == 2 and len(whole) <= 8
    f = col(ct.MYSQL_TYPE_DOUBLE, decimals=31)
    assert float(mask("hash", f, b"1.5")) >= 0
    raw = binary_cell(MaskSpec("hash"), f, KEY)(struct.pack("<d", 1.5))
    assert struct.unpack("<d", raw)[0] == float(mask("hash", f, b"1.5"))


TEMPORAL = [
    (col(ct.MYSQL_TYPE_DATE), b"1815-12-10", lambda s: date.fromisoformat(s)),
    (col(ct.MYSQL_TYPE_DATETIME), b"2024-01-02 10:00:00", datetime.fromisoformat),
    (col(ct.MYSQL_TYPE_TIMESTAMP, decimals=3), b"2024-01-02 10:00:00.123", datetime.fromisoformat),
    (col(ct.MYSQL_TYPE_TIME), b"10:11:12", time.fromisoformat),
    (col(ct.MYSQL_TYPE_YEAR), b"1999", lambda s: 1901 <= int(s) <= 2155 or int(s) == 0),
]


@pytest.mark.parametrize("c,value,parse", TEMPORAL)
@pytest.mark.parametrize("spec", [*ALL, "value(2000-01-01)", "value(2000-01-01 01:02:03)"])
def test_temporal_values_stay_valid(c, value, parse, spec):
    out = mask(spec, c, value)
    assert parse(out.decode())
    assert (b" " in out) == (c.value_class == ct.CLASS_DATETIME)


def test_temporal_redact_and_binary():
    assert mask("redact", col(ct.MYSQL_TYPE_DATE), b"1815-12-10") == b"1970-01-01"
    assert mask("redact", col(ct.MYSQL_TYPE_DATETIME), b"x") == b"1970-01-01 00:00:00"
    assert mask("redact", col(ct.MYSQL_TYPE_TIME), b"x") == b"00:00:00"
    dt = col(ct.MYSQL_TYPE_DATETIME)
    text = mask("hash", dt, b"2024-01-02 10:00:00")
    raw = binary_cell(MaskSpec("hash"), dt, KEY)(struct.pack("<HBBBBB", 2024, 1, 2, 10, 0, 0))
    year, month, day, hour, minute, second = struct.unpack("<HBBBBB", raw)
    assert datetime(year, month, day, hour, minute, second) == datetime.fromisoformat(text.decode())


def test_string_strategies():
    s = col(ct.MYSQL_TYPE_VAR_STRING, column_length=800)
    assert mask("redact", s, b"Ada") == b"****"
    assert mask("partial(4)", s, b"4111111111111111") == b"************1111"
    assert mask("partial(4)", s, b"1234") == b"****"  # never shown whole
    assert mask("partial(4)", s, b"") == b""
    assert mask("partial(0)", s, b"abc") == b"***"
    assert mask("partial(2)", s, "Zoë Ämä".encode()) == "*****mä".encode()
    assert mask("email", s, b"ada@example.com") == b"****@example.com"
    assert mask("email", s, b"a@b@c.org") == b"****@c.org"
    assert mask("email", s, b"no-at-sign") == b"****"
    assert mask("value(n/a)", s, b"x") == b"n/a"
    assert mask("null", s, b"x") is None


def test_latin1_partial_is_per_character():
    s = col(ct.MYSQL_TYPE_VAR_STRING, character_set=8)
    assert mask("partial(1)", s, "ÄÖÜ".encode("cp1252")) == "**Ü".encode("cp1252")


def test_hash_is_deterministic_and_keyed():
    s = col(ct.MYSQL_TYPE_VAR_STRING)
    a = mask("hash", s, b"ada@example.com")
    assert a == mask("hash", s, b"ada@example.com")
    assert a == mask("hash", col(ct.MYSQL_TYPE_STRING), b"ada@example.com")  # joins across columns
    assert a != mask("hash", s, b"alan@example.org")
    assert a != mask("hash", s, b"ada@example.com", key=b"other")
    assert len(a) == 16 and int(a, 16) >= 0


@pytest.mark.parametrize("spec", [*ALL, "null"])
@pytest.mark.parametrize(
    "t", [ct.MYSQL_TYPE_LONG, ct.MYSQL_TYPE_DATE, ct.MYSQL_TYPE_VAR_STRING, ct.MYSQL_TYPE_JSON]
)
def test_null_stays_null_except_value(spec, t):
    out = mask(spec, col(t), None)
    assert (out is not None) == spec.startswith("value")


def test_other_types():
    blob = col(ct.MYSQL_TYPE_BLOB, character_set=ct.BINARY_CHARSET)
    assert mask("redact", blob, b"\x00\xff") == b"****"
    assert mask("email", blob, b"a@b") == b"****"
    assert mask("partial(1)", blob, b"\x01\x02\x03") == b"**\x03"
    j = col(ct.MYSQL_TYPE_JSON)
    for spec in ALL:
        json.loads(mask(spec, j, b'{"a": 1}'))
    assert mask("value([1])", j, b"{}") == b"[1]"
    e = col(ct.MYSQL_TYPE_STRING, flags=ct.ENUM_FLAG)
    assert [mask(s, e, b"paid") for s in ("redact", "hash", "partial(2)")] == [b""] * 3
    bit = col(ct.MYSQL_TYPE_BIT, column_length=12)
    assert mask("redact", bit, b"\x0f\xff") == b"\0\0"
    assert len(mask("hash", bit, b"\x0f\xff")) == 2
    geo = col(ct.MYSQL_TYPE_GEOMETRY, character_set=ct.BINARY_CHARSET)
    assert mask("hash", geo, b"whatever")[4:9] == b"\x01\x01\0\0\0"


def test_masked_definitions():
    ssn = col(ct.MYSQL_TYPE_STRING, column_length=44, flags=ct.NOT_NULL_FLAG)
    assert masked_definition(MaskSpec("hash"), ssn).column_length == 64
    assert masked_definition(MaskSpec("redact"), ssn) is ssn
    assert not masked_definition(MaskSpec("null"), ssn).flags & ct.NOT_NULL_FLAG
    tiny = col(ct.MYSQL_TYPE_STRING, column_length=4)
    assert masked_definition(MaskSpec("redact"), tiny).column_length == 16
    assert masked_definition(MaskSpec("value", "unknown"), tiny).column_length == 28
    email = col(ct.MYSQL_TYPE_VAR_STRING, column_length=8)
    assert masked_definition(MaskSpec("email"), email).column_length == 20
