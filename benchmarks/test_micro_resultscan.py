"""Microbenchmarks of response scanning, compiled against its pure-Python twin.

A whole 1,000-row text result set in one chunk, and a 256 KiB chunk of 200-byte rows (a
relay read in the middle of a large result). The compiled row of each group records
``compiled_us``, ``twin_us`` and ``speedup_vs_twin`` in ``extra_info``. The compiled
module is imported explicitly: these fail, not skip, when it is not built.

    .venv/bin/pytest benchmarks/test_micro_resultscan.py
"""

from __future__ import annotations

import importlib
import timeit

import pytest

from myguard._fast import twin
from myguard.protocol.codec import lenenc_str
from myguard.protocol.generic_response import ok_packet

IMPLS = {
    "compiled": importlib.import_module("myguard._fast.resultscan"),
    "twin": twin("resultscan"),
}
_framing = twin("framing")


def _frame(payloads: list[bytes]) -> bytes:
    out, seq = b"", 1
    for p in payloads:
        data, seq = _framing.build_packets(p, seq)
        out += data
    return out


def _coldef(name: bytes) -> bytes:
    fields = (b"def", b"db", b"t", b"t", name, name)
    return b"".join(lenenc_str(x) for x in fields) + b"\x0c" + bytes(12)


def _text_row(i: int) -> bytes:
    cells = (b"%d" % i, b"user%06d@example.com" % i, b"2024-01-02 10:00:00", b"x" * (i % 40))
    return b"".join(lenenc_str(c) for c in cells)


RESULT_SET = _frame(
    [b"\x04"]
    + [_coldef(b"c%d" % i) for i in range(4)]
    + [_text_row(i) for i in range(1000)]
    + [ok_packet(header=0xFE)]
)
_ROW = _frame([lenenc_str(b"r" * 195)])[4:]  # 200-byte rows: 4-byte header + 196-byte body
MID_RESULT = b"".join(
    len(_ROW).to_bytes(3, "little") + bytes((i & 0xFF,)) + _ROW
    for i in range(256 * 1024 // (4 + len(_ROW)) + 1)
)[: 256 * 1024]  # cut mid-row, as a read is


def scan_result_set(module) -> int:
    scanner = module.ResponseScanner(True)
    scanner.start(module.RESPONSE_QUERY)
    assert scanner.scan(RESULT_SET) == len(RESULT_SET) and scanner.done
    return scanner.rows


def scan_mid_result(module) -> int:
    scanner = module.ResponseScanner(True)
    scanner.start(module.RESPONSE_FETCH, True)
    assert scanner.scan(MID_RESULT) == len(MID_RESULT)
    return scanner.rows


CASES = {"1000-row-result-set": scan_result_set, "256KiB-of-200B-rows": scan_mid_result}


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("name", list(CASES))
def test_resultscan(benchmark, name, impl):
    case = CASES[name]
    benchmark.group = f"resultscan {name}"
    rows = benchmark(case, IMPLS[impl])
    assert rows == case(IMPLS["twin"])
    benchmark.extra_info["rows"] = rows
    if benchmark.disabled or impl != "compiled":
        return
    calls = 20
    twin_s = min(timeit.repeat(lambda: case(IMPLS["twin"]), number=calls, repeat=3)) / calls
    compiled_s = benchmark.stats.stats.median
    benchmark.extra_info["compiled_us"] = round(compiled_s * 1e6, 1)
    benchmark.extra_info["twin_us"] = round(twin_s * 1e6, 1)
    benchmark.extra_info["speedup_vs_twin"] = round(twin_s / compiled_s, 1)
