"""Microbenchmarks of audit chaining, compiled against its pure-Python twin.

100 records of a point-select statement record's size are chained, framed and written
to a file (page cache), without and with an HMAC key: what every statement's record costs
on its way into the audit segment. The compiled row of each group records ``compiled_us``,
``twin_us`` and ``speedup_vs_twin`` in ``extra_info``. The compiled module is imported
explicitly: these fail, not skip, when it is not built.

    .venv/bin/pytest benchmarks/test_micro_auditchain.py
"""

from __future__ import annotations

import importlib
import os
import timeit

import pytest

from myguard._fast import twin

IMPLS = {
    "compiled": importlib.import_module("myguard._fast.auditchain"),
    "twin": twin("auditchain"),
}
BODIES = [bytes(range(256))[: 200 + i % 50] for i in range(100)]
KEYS = {"sha256": None, "hmac": b"k" * 32}


def chain(module, key: bytes | None, fd: int) -> bytes:
    tail = module.Tail(key, b"\0" * 32, 1)
    tail.fd = fd
    for body in BODIES:
        tail.append(body)
    return tail.last_hash


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("key_name", list(KEYS))
def test_auditchain(benchmark, tmp_path, key_name, impl):
    key = KEYS[key_name]
    benchmark.group = f"auditchain 100 records {key_name}"
    fd = os.open(tmp_path / "segment", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        result = benchmark(chain, IMPLS[impl], key, fd)
        assert result == chain(IMPLS["twin"], key, fd)
        if benchmark.disabled or impl != "compiled":
            return
        calls = 50
        twin_s = (
            min(timeit.repeat(lambda: chain(IMPLS["twin"], key, fd), number=calls, repeat=3))
            / calls
        )
        compiled_s = benchmark.stats.stats.median
        benchmark.extra_info["compiled_us"] = round(compiled_s * 1e6, 1)
        benchmark.extra_info["twin_us"] = round(twin_s * 1e6, 1)
        benchmark.extra_info["speedup_vs_twin"] = round(twin_s / compiled_s, 1)
    finally:
        os.close(fd)
