"""RowMasker throughput: 8-column rows with 3 masked cells, compiled vs twin, both protocols.

``test_rowmask_rows``: the cell functions are plain Python functions returning constants,
so the numbers show the row rewriting itself. ``test_rowmask_strategies``: the cells are
the real strategies of the end-to-end masking measure (redact, email, partial(4)), which
the compiled masker runs in C.
Run: .venv/bin/pytest benchmarks/test_micro_rowmask.py --benchmark-only
"""

from __future__ import annotations

import importlib
import struct

import pytest

from myguard._fast import twin
from myguard.masking.strategies import binary_cell, text_cell
from myguard.policy.mask_spec import MaskSpec
from myguard.protocol import column_types as ct
from myguard.protocol.codec import lenenc_str
from myguard.protocol.column_definition import ColumnDefinition

ROWS = 1000
TYPES = [
    ct.MYSQL_TYPE_LONG,
    ct.MYSQL_TYPE_VAR_STRING,
    ct.MYSQL_TYPE_VAR_STRING,
    ct.MYSQL_TYPE_VAR_STRING,
    ct.MYSQL_TYPE_STRING,
    ct.MYSQL_TYPE_DATE,
    ct.MYSQL_TYPE_NEWDECIMAL,
    ct.MYSQL_TYPE_DATETIME,
]
CELLS = [None, None, lambda v: b"****", None, lambda v: b"****", None, None, lambda v: None]
TEXT_ROW = b"".join(
    lenenc_str(v)
    for v in (
        b"42", b"Ada Lovelace", b"ada@example.com", b"+44 20 7946 0018", b"123-45-6789",
        b"1815-12-10", b"5000.00", b"2024-01-02 10:00:00",
    )
)  # fmt: skip
BINARY_ROW = (
    b"\0\0\0"
    + struct.pack("<i", 42)
    + lenenc_str(b"Ada Lovelace")
    + lenenc_str(b"ada@example.com")
    + lenenc_str(b"+44 20 7946 0018")
    + lenenc_str(b"123-45-6789")
    + b"\x04" + struct.pack("<HBB", 1815, 12, 10)
    + lenenc_str(b"5000.00")
    + b"\x07" + struct.pack("<HBBBBB", 2024, 1, 2, 10, 0, 0)
)  # fmt: skip


def chunk(row: bytes) -> bytes:
    return (len(row).to_bytes(3, "little") + b"\x01" + row) * ROWS


MODULES = {"compiled": importlib.import_module("myguard._fast.rowmask"), "twin": twin("rowmask")}


@pytest.mark.parametrize("impl", MODULES)
@pytest.mark.parametrize("protocol", ["text", "binary"])
def test_rowmask_rows(benchmark, impl, protocol):
    masker = MODULES[impl].RowMasker(TYPES, CELLS)
    binary = protocol == "binary"
    buf = chunk(BINARY_ROW if binary else TEXT_ROW)
    out = benchmark(masker.rewrite_packets, buf, binary)
    assert len(out) < len(buf)
    benchmark.extra_info["rows"] = ROWS
    benchmark.extra_info["us_per_row"] = benchmark.stats.stats.mean / ROWS * 1e6


@pytest.mark.parametrize("impl", MODULES)
def test_rowmask_single_text_row(benchmark, impl):
    masker = MODULES[impl].RowMasker(TYPES, CELLS)
    benchmark(masker.rewrite_text_row, TEXT_ROW)


STRATEGIES = [None, "redact", "email", "partial(4)", None, None, None, None]


@pytest.mark.parametrize("impl", MODULES)
@pytest.mark.parametrize("protocol", ["text", "binary"])
def test_rowmask_strategies(benchmark, impl, protocol):
    binary = protocol == "binary"
    make = binary_cell if binary else text_cell
    cells = [
        None if spec is None
        else make(MaskSpec.parse(spec), ColumnDefinition(type=t, character_set=45), b"key")
        for t, spec in zip(TYPES, STRATEGIES, strict=True)
    ]  # fmt: skip
    masker = MODULES[impl].RowMasker(TYPES, cells)
    buf = chunk(BINARY_ROW if binary else TEXT_ROW)
    benchmark(masker.rewrite_packets, buf, binary)
    benchmark.extra_info["rows"] = ROWS
    benchmark.extra_info["us_per_row"] = benchmark.stats.stats.mean / ROWS * 1e6
