"""The per-statement hot path of the audit trail: ``AuditWriter.enqueue(body)``.

Run: .venv/bin/pytest benchmarks/test_audit_enqueue.py --benchmark-only
Each round makes RECORDS enqueue calls on the event loop (a pre-encoded statement body,
as ``AuditTrail.statement`` hands over) and then awaits one ``write()``, which returns once
everything before it is written (and in ``batch``/``always`` fdatasync'd); the CPU time
covers the writer thread's work too. Reported per
record: ``enqueue_us`` (time spent in the enqueue calls, what a statement pays on the loop)
and ``cpu_us`` (process CPU, every thread, for the whole round).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from myguard.audit import AuditWriter, statement_record

RECORDS = 20000


def body(i: int) -> bytes:
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
    ).encode()


@pytest.mark.parametrize("hmac_key", [None, b"k" * 32], ids=["sha256", "hmac"])
@pytest.mark.parametrize("mode", ["off", "batch", "always"])
def test_audit_enqueue_cost(benchmark, tmp_path, mode, hmac_key):
    bodies = [body(i) for i in range(100)]
    loop = asyncio.new_event_loop()
    writer = loop.run_until_complete(AuditWriter.open(tmp_path, fsync=mode, hmac_key=hmac_key))
    spent: list[float] = []
    cpu: list[float] = []

    async def one_round() -> None:
        enqueue = writer.enqueue
        cpu_start = time.process_time()
        start = time.perf_counter()
        for i in range(RECORDS):
            enqueue(bodies[i % 100])
        spent.append(time.perf_counter() - start)
        await asyncio.sleep(0.02)  # past any hand-off delay, so the write below comes last
        await writer.write(statement_record(user="bench", statement="end", decision="allow"))
        cpu.append(time.process_time() - cpu_start)

    benchmark.pedantic(lambda: loop.run_until_complete(one_round()), rounds=5, iterations=1)
    loop.run_until_complete(writer.close())
    loop.close()
    benchmark.extra_info["enqueue_us"] = round(min(spent) / RECORDS * 1e6, 3)
    benchmark.extra_info["cpu_us"] = round(min(cpu) / RECORDS * 1e6, 3)
