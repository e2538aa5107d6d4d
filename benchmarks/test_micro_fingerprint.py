"""Microbenchmarks of the statement fingerprint, compiled against its pure-Python twin.

Each statement is its own benchmark group, so pytest-benchmark's table shows the two
side by side with the ratio in parentheses; the compiled row also records
``speedup_vs_twin`` in ``extra_info``. The compiled module is imported explicitly: these
fail, not skip, when it is not built.

    .venv/bin/pytest benchmarks/test_micro_fingerprint.py
"""

from __future__ import annotations

import importlib
import timeit

import pytest

from myguard._fast import twin

IMPLS = {
    "compiled": importlib.import_module("myguard._fast.fingerprint"),
    "twin": twin("fingerprint"),
}

_ROWS = ", ".join(
    f"({i}, {i * 7919 % 100000}, '{i:011d}-{i * 31:011d}-{i * 97:011d}', '{i * 13:011d}-pad')"
    for i in range(1, 51)
)
STATEMENTS = {
    "point-select": b"SELECT c FROM sbtest1 WHERE id=4711",
    "join-in-order-by": (
        b"SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id "
        b"WHERE o.status IN ('new', 'paid', 'shipped', 'returned') AND o.created_at >= "
        b"'2024-01-01 00:00:00' AND c.region_id IN (3, 5, 8, 13, 21) "
        b"ORDER BY o.created_at DESC, o.id LIMIT 50"
    ),
    "insert-50-rows": b"INSERT INTO sbtest1 (id, k, c, pad) VALUES " + _ROWS.encode(),
}


def _twin_seconds(sql: bytes) -> float:
    calls = 200
    return (
        min(timeit.repeat(lambda: IMPLS["twin"].fingerprint(sql), number=calls, repeat=3)) / calls
    )


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("name", list(STATEMENTS))
def test_fingerprint(benchmark, name, impl):
    sql = STATEMENTS[name]
    fingerprint = IMPLS[impl].fingerprint
    benchmark.group = f"fingerprint {name}"
    h, _ = benchmark(fingerprint, sql)
    assert h == IMPLS["twin"].fingerprint_hash(sql)
    if benchmark.disabled or impl != "compiled":
        return
    compiled_s = benchmark.stats.stats.median
    twin_s = _twin_seconds(sql)
    benchmark.extra_info["compiled_us"] = round(compiled_s * 1e6, 3)
    benchmark.extra_info["twin_us"] = round(twin_s * 1e6, 3)
    benchmark.extra_info["speedup_vs_twin"] = round(twin_s / compiled_s, 1)
    print(
        f"\n{name}: compiled {compiled_s * 1e6:.3f} us, twin {twin_s * 1e6:.1f} us, "
        f"speedup {twin_s / compiled_s:.0f}x"
    )


@pytest.mark.parametrize("name", list(STATEMENTS))
def test_fingerprint_hash(benchmark, name):
    sql = STATEMENTS[name]
    benchmark.group = f"fingerprint {name}"
    assert benchmark(IMPLS["compiled"].fingerprint_hash, sql) == IMPLS["twin"].fingerprint_hash(sql)
