"""Audit write throughput: records/s for each fsync mode with 1 and 50 concurrent writers.

Run: .venv/bin/pytest benchmarks/test_audit_write.py --benchmark-only
Each round writes RECORDS statement records; records/s = RECORDS / mean round time
(also printed as ``extra_info.records_per_second``).
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from myguard.audit import AuditWriter, statement_record

RECORDS = 2000


def make_record(i: int):
    return statement_record(
        user="alice",
        groups=["dba", "analysts"],
        source_address="10.1.2.3:50123",
        backend="primary",
        session_id="s-42",
        statement=f"SELECT id, email FROM shop.customers WHERE id = {i}",
        fingerprint=1234567890123,
        kind="select",
        tables_read=["shop.customers"],
        columns=["id", "email"],
        decision="allow",
        rule="default-allow",
        rows_returned=1,
        started_at=1700000000.0,
        duration=0.0004,
    )


async def write_round(writer: AuditWriter, concurrency: int, records: int) -> None:
    counter = itertools.count()

    async def worker() -> None:
        for i in counter:
            if i >= records:
                return
            await writer.write(make_record(i))

    await asyncio.gather(*(worker() for _ in range(concurrency)))


@pytest.mark.parametrize("concurrency", [1, 50])
@pytest.mark.parametrize("mode", ["off", "batch", "always"])
def test_audit_write_throughput(benchmark, tmp_path, mode, concurrency):
    if mode != "off" and concurrency == 1:
        rounds, records = 1, 200  # one fsync (batch: one window) per record: keep it short
    else:
        rounds, records = 3, RECORDS
    loop = asyncio.new_event_loop()
    writer = loop.run_until_complete(AuditWriter.open(tmp_path, fsync=mode))
    benchmark.pedantic(
        lambda: loop.run_until_complete(write_round(writer, concurrency, records)),
        rounds=rounds,
        iterations=1,
    )
    loop.run_until_complete(writer.close())
    loop.close()
    benchmark.extra_info["records_per_second"] = round(records / benchmark.stats.stats.mean)
