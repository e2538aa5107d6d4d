"""RowMasker: the compiled module and its twin agree on random rows of every column type,
in both protocols; no masks means the bytes come back unchanged. The compiled cases fail
(never skip) when the module is not built."""

from __future__ import annotations

import hashlib
import hmac
import importlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from myguard._fast import twin
from myguard._fast.cell_ops import EMAIL, HASH, PARTIAL, TEXT_UTF8, CellOp
from myguard.masking.strategies import binary_cell, text_cell
from myguard.policy.mask_spec import MaskSpec
from myguard.protocol import column_types as ct
from myguard.protocol.codec import lenenc_str
from myguard.protocol.column_definition import ColumnDefinition
from myguard.protocol.errors import ProtocolError

compiled = importlib.import_module("myguard._fast.rowmask")
pure = twin("rowmask")

TYPES = [
    ct.MYSQL_TYPE_TINY,
    ct.MYSQL_TYPE_SHORT,
    ct.MYSQL_TYPE_YEAR,
    ct.MYSQL_TYPE_LONG,
    ct.MYSQL_TYPE_INT24,
    ct.MYSQL_TYPE_LONGLONG,
    ct.MYSQL_TYPE_FLOAT,
    ct.MYSQL_TYPE_DOUBLE,
    ct.MYSQL_TYPE_NULL,
    ct.MYSQL_TYPE_DATE,
    ct.MYSQL_TYPE_DATETIME,
    ct.MYSQL_TYPE_TIMESTAMP,
    ct.MYSQL_TYPE_TIME,
    ct.MYSQL_TYPE_NEWDECIMAL,
    ct.MYSQL_TYPE_VAR_STRING,
    ct.MYSQL_TYPE_STRING,
    ct.MYSQL_TYPE_BLOB,
    ct.MYSQL_TYPE_JSON,
    ct.MYSQL_TYPE_BIT,
    ct.MYSQL_TYPE_GEOMETRY,
]
# Lengths that cross every length-encoding boundary (1, 3 and 4 byte headers).
long_bytes = st.one_of(
    st.binary(max_size=20), st.binary(min_size=250, max_size=260), st.just(b"x" * 70000)
)


def binary_value(draw: st.DrawFn, t: int) -> bytes:
    """One binary-protocol cell as it travels, header included."""
    width = ct.BINARY_FIXED_WIDTH.get(t)
    if width is not None:
        return draw(st.binary(min_size=width, max_size=width))
    if t in (ct.MYSQL_TYPE_TIME, ct.MYSQL_TYPE_TIME2):
        n = draw(st.sampled_from([0, 8, 12]))
    elif t in ct.BINARY_TEMPORAL:
        n = draw(st.sampled_from([0, 4, 7, 11]))
    else:
        return lenenc_str(draw(long_bytes))
    return bytes((n,)) + draw(st.binary(min_size=n, max_size=n))


def replacement(draw: st.DrawFn, t: int, binary: bool) -> bytes | None:
    """A masked value valid for the cell layout (None: the cell becomes NULL)."""
    if draw(st.booleans()):
        return None
    if binary:
        width = ct.BINARY_FIXED_WIDTH.get(t)
        if width is not None:
            return draw(st.binary(min_size=width, max_size=width))
        if t in ct.BINARY_TEMPORAL:
            return draw(st.binary(min_size=4, max_size=4))
    return draw(long_bytes)


@st.composite
def cases(draw: st.DrawFn, binary: bool):
    types = draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=12))
    nulls = [draw(st.booleans()) or t == ct.MYSQL_TYPE_NULL for t in types]
    cells = []
    for t in types:
        if draw(st.booleans()):
            cells.append(None)
            continue
        new = replacement(draw, t, binary)
        cells.append(lambda v, new=new: new)
    if binary:
        bitmap = bytearray((len(types) + 9) // 8)
        body = b""
        for i, (t, null) in enumerate(zip(types, nulls, strict=True)):
            if null:
                bitmap[(i + 2) >> 3] |= 1 << ((i + 2) & 7)
            else:
                body += binary_value(draw, t)
        row = b"\0" + bytes(bitmap) + body
    else:
        row = b"".join(b"\xfb" if null else lenenc_str(draw(long_bytes)) for null in nulls)
    return types, cells, row


@settings(max_examples=200, deadline=None)
@given(cases(binary=False))
def test_text_rows_agree(case):
    types, cells, row = case
    expected = pure.RowMasker(types, cells).rewrite_text_row(row)
    assert compiled.RowMasker(types, cells).rewrite_text_row(row) == expected
    packet = len(row).to_bytes(3, "little") + b"\x07" + row
    assert compiled.RowMasker(types, cells).rewrite_packets(packet * 2, False) == pure.RowMasker(
        types, cells
    ).rewrite_packets(packet * 2, False)


@settings(max_examples=200, deadline=None)
@given(cases(binary=True))
def test_binary_rows_agree(case):
    types, cells, row = case
    expected = pure.RowMasker(types, cells).rewrite_binary_row(row)
    assert compiled.RowMasker(types, cells).rewrite_binary_row(row) == expected
    assert expected[0] == 0


@settings(max_examples=100, deadline=None)
@given(cases(binary=False), cases(binary=True))
def test_no_masks_round_trip(text_case, binary_case):
    for module in (compiled, pure):
        types, _, row = text_case
        assert module.RowMasker(types, [None] * len(types)).rewrite_text_row(row) == row
        types, _, row = binary_case
        assert module.RowMasker(types, [None] * len(types)).rewrite_binary_row(row) == row


@settings(max_examples=100, deadline=None)
@given(cases(binary=True))
def test_identity_cells_keep_binary_rows(case):
    types, cells, row = case
    same = [None if c is None else (lambda v: v) for c in cells]
    for module in (compiled, pure):
        assert module.RowMasker(types, same).rewrite_binary_row(row) == row


@pytest.fixture(params=[compiled, pure], ids=["compiled", "twin"])
def rm(request):
    return request.param


def test_null_bitmap_follows_masked_cells(rm):
    types = [ct.MYSQL_TYPE_LONG, ct.MYSQL_TYPE_VAR_STRING, ct.MYSQL_TYPE_DATE]
    row = b"\0\x10" + struct.pack("<i", 7) + lenenc_str(b"ada")  # column 2 (bit 4) NULL
    masker = rm.RowMasker(types, [None, lambda v: None, lambda v: b"\xb2\x07\x01\x01"])
    # column 1 (bit 3) becomes NULL, column 2 stops being NULL
    assert (
        masker.rewrite_binary_row(row) == b"\0\x08" + struct.pack("<i", 7) + b"\x04\xb2\x07\x01\x01"
    )


def test_text_row_masks_and_keeps(rm):
    masker = rm.RowMasker([3, 253, 253], [None, lambda v: b"****", lambda v: None])
    row = lenenc_str(b"1") + lenenc_str(b"ada@example.com") + lenenc_str(b"x")
    assert masker.rewrite_text_row(row) == lenenc_str(b"1") + lenenc_str(b"****") + b"\xfb"


def test_packets_keep_sequence_ids_and_terminators(rm):
    masker = rm.RowMasker([253], [lambda v: b"****"])
    row = lenenc_str(b"secret")
    eof = b"\x05\x00\x00\x09\xfe\x00\x00\x02\x00"
    buf = len(row).to_bytes(3, "little") + b"\x08" + row + eof
    assert masker.rewrite_packets(buf, False) == b"\x05\x00\x00\x08\x04****" + eof


def test_big_packets_are_refused(rm):
    masker = rm.RowMasker([253], [lambda v: b"****"])
    with pytest.raises(ProtocolError, match="16 MiB"):
        masker.rewrite_packets(b"\xff\xff\xff\x01" + b"\0" * 0xFFFFFF, False)
    grow = rm.RowMasker([253], [lambda v: b"x" * 0xFFFFFF])
    with pytest.raises(ProtocolError, match="16 MiB"):
        grow.rewrite_packets(b"\x02\x00\x00\x01\x01a", False)


def test_malformed_rows_raise(rm):
    masker = rm.RowMasker([253, 253], [lambda v: b"", None])
    for bad in (lenenc_str(b"a"), lenenc_str(b"a") + b"\x05ab", b"\xff", lenenc_str(b"a") * 3):
        with pytest.raises(ProtocolError):
            masker.rewrite_text_row(bad)
    with pytest.raises(ProtocolError):
        rm.RowMasker([3], [lambda v: v]).rewrite_binary_row(b"\0\0\1\2")
    with pytest.raises(ValueError):
        rm.RowMasker([3], [lambda v: b"1"]).rewrite_binary_row(b"\0\0\1\2\3\4")
    with pytest.raises(ProtocolError):
        masker.rewrite_packets(b"\x05\x00\x00\x01ab", False)


# Strategies the compiled RowMasker runs itself (CellOp), on text that is valid, invalid
# or mixed in each character set: utf8mb4, utf8mb3, latin1 (cp1252), ascii, binary, utf16.
COLLATIONS = [45, 33, 8, 11, 63, 54]
SPECS = ["redact", "partial(0)", "partial(1)", "partial(4)", "email", "value(n/a)", "null", "hash"]
STRING_TYPES = [ct.MYSQL_TYPE_VAR_STRING, ct.MYSQL_TYPE_STRING, ct.MYSQL_TYPE_BLOB]
text_values = st.one_of(
    st.none(),
    st.text(max_size=12).map(str.encode),
    st.text(alphabet="ab@.é€😀", max_size=12).map(str.encode),
    st.binary(max_size=12),
    st.lists(st.sampled_from([b"a", b"@", b"\x81", b"\xc3\xa9", b"\xed\xa0\x80", b"\xf4\x90"]),
             max_size=8).map(b"".join),
)  # fmt: skip


@st.composite
def strategy_cases(draw: st.DrawFn, binary: bool):
    columns = draw(st.lists(st.tuples(st.sampled_from(STRING_TYPES), st.sampled_from(COLLATIONS),
                                      st.sampled_from(SPECS + [None])), min_size=1, max_size=6))  # fmt: skip
    make = binary_cell if binary else text_cell
    cells = [
        None if spec is None
        else make(MaskSpec.parse(spec), ColumnDefinition(type=t, character_set=cs), b"k")
        for t, cs, spec in columns
    ]  # fmt: skip
    values = [draw(text_values) for _ in columns]
    if binary:
        bitmap = bytearray((len(columns) + 9) // 8)
        for i, v in enumerate(values):
            if v is None:
                bitmap[(i + 2) >> 3] |= 1 << ((i + 2) & 7)
        row = b"\0" + bytes(bitmap) + b"".join(lenenc_str(v) for v in values if v is not None)
    else:
        row = b"".join(b"\xfb" if v is None else lenenc_str(v) for v in values)
    return [t for t, _, _ in columns], cells, row


@settings(max_examples=300, deadline=None)
@given(strategy_cases(binary=False), strategy_cases(binary=True))
def test_compiled_strategies_agree_with_their_definitions(text_case, binary_case):
    # The twin calls each strategy's Python definition; the compiled masker runs most of
    # them in C: every byte must agree, valid text or not.
    for (types, cells, row), binary in ((text_case, False), (binary_case, True)):
        fast, slow = compiled.RowMasker(types, cells), pure.RowMasker(types, cells)
        if binary:
            assert fast.rewrite_binary_row(row) == slow.rewrite_binary_row(row)
        else:
            assert fast.rewrite_text_row(row) == slow.rewrite_text_row(row)
        packets = b"".join(len(row).to_bytes(3, "little") + bytes((n,)) + row for n in range(40))
        assert fast.rewrite_packets(packets, binary) == slow.rewrite_packets(packets, binary)


def refuse(v):
    raise AssertionError(f"the definition was called for {v!r}")


def test_compiled_ops_call_the_definition_only_for_text_they_cannot_vouch_for():
    seen = []
    cells = [
        CellOp(PARTIAL, refuse, 2, TEXT_UTF8),
        CellOp(EMAIL, lambda v: seen.append(v) or b"fallback", None, TEXT_UTF8),
    ]
    masker = compiled.RowMasker([ct.MYSQL_TYPE_VAR_STRING] * 2, cells)
    row = lenenc_str("Zoë Müller".encode()) + lenenc_str("zoë@müller.de".encode())
    assert masker.rewrite_text_row(row) == lenenc_str(b"********er") + lenenc_str(
        "****@müller.de".encode()
    )
    assert seen == []
    invalid = lenenc_str(b"ok") + lenenc_str(b"x\xff@y")
    assert masker.rewrite_text_row(invalid) == lenenc_str(b"**") + lenenc_str(b"fallback")
    assert seen == [b"x\xff@y"]

    # hash covers the raw bytes, so C computes it whatever the text
    hashed = compiled.RowMasker([ct.MYSQL_TYPE_VAR_STRING], [CellOp(HASH, refuse, b"k", TEXT_UTF8)])
    expected = hmac.new(b"k", b"x\xff", hashlib.sha256).hexdigest()[:16].encode()
    assert hashed.rewrite_text_row(lenenc_str(b"x\xff")) == lenenc_str(expected)


@pytest.mark.parametrize("spec", ["partial(0)", "partial(4)", "email"])
@pytest.mark.parametrize("collation", [45, 8])  # utf8mb4, latin1
@pytest.mark.parametrize("size", [249, 250, 251, 252, 65534, 65535, 65536, 70000])
def test_long_cells_written_in_place_agree_with_the_definitions(spec, collation, size):
    # partial and email cells are written straight into the row; their masked length
    # crosses the 1-, 3- and 4-byte length headers where the value's does, or one later.
    accents = size // 4
    value = ("é" * accents).encode() + b"@" + b"x" * (size - 2 * accents - 1)  # valid text
    assert len(value) == size
    columns = [ColumnDefinition(type=ct.MYSQL_TYPE_VAR_STRING, character_set=collation)] * 2
    for binary in (False, True):
        make = binary_cell if binary else text_cell
        cells = [make(MaskSpec.parse(spec), column, b"k") for column in columns]
        types = [ct.MYSQL_TYPE_VAR_STRING] * 2
        fast, slow = compiled.RowMasker(types, cells), pure.RowMasker(types, cells)
        cells_bytes = lenenc_str(value) + lenenc_str(b"a@b")
        row = b"\0\0" + cells_bytes if binary else cells_bytes
        rewrite = "rewrite_binary_row" if binary else "rewrite_text_row"
        expected = getattr(slow, rewrite)(row)
        assert getattr(fast, rewrite)(row) == expected
        assert expected != row
        packet = len(row).to_bytes(3, "little") + b"\x07" + row
        assert fast.rewrite_packets(packet * 3, binary) == slow.rewrite_packets(packet * 3, binary)
