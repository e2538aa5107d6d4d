"""Per-statement metrics are tallied and flushed: what /metrics shows after a flush is
what observing each statement directly would have shown."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from myguard import metrics


def _samples(registry: CollectorRegistry, name: str, command: str) -> dict[str, float]:
    return {
        f"{s.name}{s.labels.get('le', '')}": s.value
        for family in registry.collect()
        if family.name == name
        for s in family.samples
        if s.labels.get("command") == command and not s.name.endswith("_created")
    }


@settings(max_examples=50, deadline=None)
@given(latencies=st.lists(st.floats(0, 60), max_size=40), command=st.sampled_from("abc"))
@example(latencies=[0.0, 0.0002, 0.001, 1.0, 30.0, 31.0], command="a")  # on the bucket bounds
def test_flushed_histogram_matches_direct_observation(latencies: list[float], command: str) -> None:
    command = f"tally_{command}"
    private = CollectorRegistry()
    direct = Histogram(
        "myguard_statement_seconds",
        "same buckets",
        ["command"],
        buckets=metrics._STATEMENT_BUCKETS,
        registry=private,
    )
    for seconds in latencies:
        direct.labels(command).observe(seconds)
    before = _samples(REGISTRY, "myguard_statement_seconds", command)
    for seconds in latencies:
        metrics.statement_done(command, "ok", seconds)
    metrics.flush()
    after = _samples(REGISTRY, "myguard_statement_seconds", command)
    expected = _samples(private, "myguard_statement_seconds", command)
    delta = {k: after[k] - before.get(k, 0.0) for k in after}
    if not latencies:
        assert set(delta.values()) <= {0.0}
        return
    sum_key = "myguard_statement_seconds_sum"
    assert delta.pop(sum_key) == pytest.approx(expected.pop(sum_key))
    assert delta == expected


def test_counters_are_flushed_and_reset() -> None:
    def value(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        value("myguard_bytes_total", {"direction": "to_client"}),
        value("myguard_policy_cache_lookups_total", {"result": "hit"}),
        value("myguard_statements_total", {"command": "tally_q", "outcome": "error"}),
    )
    metrics.tally.bytes_to_client += 1234
    metrics.tally.cache_hits += 3
    metrics.statement_done("tally_q", "error", 0.001)
    metrics.statement_done("tally_q", "error", 0.002)
    metrics.flush()
    metrics.flush()  # a second flush adds nothing
    after = (
        value("myguard_bytes_total", {"direction": "to_client"}),
        value("myguard_policy_cache_lookups_total", {"result": "hit"}),
        value("myguard_statements_total", {"command": "tally_q", "outcome": "error"}),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [1234, 3, 2]


def test_periodic_flush_runs_and_flushes_when_cancelled() -> None:
    async def scenario() -> float:
        label = {"direction": "to_backend"}
        start = REGISTRY.get_sample_value("myguard_bytes_total", label) or 0.0
        task = asyncio.create_task(metrics.flush_periodically(0.01))
        metrics.tally.bytes_to_backend += 7
        await asyncio.sleep(0.05)
        periodic = (REGISTRY.get_sample_value("myguard_bytes_total", label) or 0.0) - start
        metrics.tally.bytes_to_backend += 5
        task.cancel()
        await asyncio.wait([task])
        final = (REGISTRY.get_sample_value("myguard_bytes_total", label) or 0.0) - start
        return periodic, final

    assert asyncio.run(scenario()) == (7, 12)


@settings(max_examples=30, deadline=None)
@given(
    ends=st.lists(st.tuples(st.sampled_from([0, 1]), st.floats(0, 60)), max_size=30),
    sent=st.integers(0, 1 << 40),
)
def test_what_the_proxy_cores_count_is_flushed_like_the_tally(ends, sent) -> None:
    """Commands the cores end on taught verdicts, and the bytes they relay, reach
    Prometheus at a flush as the tally's own do (query: a policy cache hit each)."""
    names = {0: "query", 1: "stmt_execute"}

    def value(name: str, labels: dict[str, str]) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def read() -> list[float]:
        return [
            value("myguard_bytes_total", {"direction": "to_backend"}),
            value("myguard_policy_cache_lookups_total", {"result": "hit"}),
            *(
                value("myguard_statements_total", {"command": names[c], "outcome": "ok"})
                for c in (0, 1)
            ),
            *(value("myguard_statement_seconds_count", {"command": names[c]}) for c in (0, 1)),
            *(value("myguard_statement_seconds_sum", {"command": names[c]}) for c in (0, 1)),
        ]

    metrics.flush()
    before = read()
    counts = metrics.core_counts
    counts.bytes_to_backend += sent
    for command, seconds in ends:
        counts.record(command, seconds)
        counts.cache_hits += command == 0
    metrics.flush()
    metrics.flush()  # a second flush adds nothing
    delta = [a - b for a, b in zip(read(), before, strict=True)]
    queries = sum(1 for c, _ in ends if c == 0)
    executes = len(ends) - queries
    assert delta[:6] == [sent, queries, queries, executes, queries, executes]
    for i, command in ((6, 0), (7, 1)):
        assert delta[i] == pytest.approx(sum(s for c, s in ends if c == command))


def test_audit_writers_are_reported_at_flush(tmp_path) -> None:
    """Health, records appended, write failures and the ring's backlog of the audit
    writers, from their own state (no Prometheus update per record)."""
    from myguard.audit import AuditWriter, statement_record

    def value(name: str, labels: dict[str, str] | None = None) -> float:
        return REGISTRY.get_sample_value(name, labels or {}) or 0.0

    async def run() -> None:
        rings = tmp_path / "rings"
        rings.mkdir()
        writer = await AuditWriter.open(tmp_path / "audit", fsync="off", ring_directory=rings)
        records = value("myguard_audit_records_total")
        failures = value("myguard_audit_write_failures_total")
        metrics.watch_audit(writer)
        writer.tail.syncer = None  # nothing tells the writer thread: the ring keeps them
        try:
            for i in range(3):
                writer.enqueue(
                    statement_record(user="u", statement=f"SELECT {i}", decision="allow").encode()
                )
            metrics.flush()
            assert value("myguard_audit_records_total") == records + 3
            assert value("myguard_audit_writers", {"state": "healthy"}) >= 1
            assert value("myguard_audit_ring_pending_bytes") == writer.tail.ring_pending > 0
            writer._fail(OSError(28, "No space left on device"))
            metrics.flush()
            assert value("myguard_audit_write_failures_total") == failures + 1
            assert value("myguard_audit_writers", {"state": "failed"}) >= 1
        finally:
            metrics._writers.clear()
            await writer.close()

    asyncio.run(run())


_WORKER = """
import sys
from myguard import metrics
metrics.AUDIT_WRITERS.labels("healthy").set(1)
metrics.AUDIT_WRITERS.labels("failed").set(0)
metrics.AUDIT_RECORDS.inc(5)
metrics.AUDIT_RING_PENDING.set(100)
"""


def test_the_supervisor_adds_its_own_audit_chain(tmp_path) -> None:
    """The supervisor's /metrics: every worker's audit values (their metric files) plus its
    own chain's, in the same families; before any worker wrote one, its own alone."""
    import os
    import subprocess
    import sys

    from prometheus_client import generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    from myguard.audit import AuditWriter, statement_record

    files = tmp_path / "metrics"
    files.mkdir()

    def scrape(collector: metrics.WithOwnAudit) -> dict[str, float]:
        registry = CollectorRegistry()
        registry.register(collector)
        text = generate_latest(registry).decode()
        return {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("myguard_audit") and not line.startswith("#")
        }

    async def run() -> None:
        writer = await AuditWriter.open(tmp_path / "audit", fsync="off", ring_directory=None)
        collector = metrics.WithOwnAudit(MultiProcessCollector(None, str(files)))
        try:
            assert not [k for k in scrape(collector) if k.startswith("myguard_audit")]
            collector.watch(writer)
            writer.enqueue(statement_record(user="u", statement="S", decision="allow").encode())
            alone = scrape(collector)
            assert alone['myguard_audit_writers{state="healthy"}'] == 1
            assert alone['myguard_audit_writers{state="failed"}'] == 0
            assert alone["myguard_audit_records_total"] == 1
            assert alone["myguard_audit_write_failures_total"] == 0
            env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(files)}
            for _ in range(2):  # two workers, each with its healthy chain
                subprocess.run([sys.executable, "-c", _WORKER], env=env, check=True)
            both = scrape(collector)
            assert both['myguard_audit_writers{state="healthy"}'] == 3
            assert both["myguard_audit_records_total"] == 11
            assert both["myguard_audit_ring_pending_bytes"] == 200
            writer._fail(OSError(28, "No space left on device"))
            failed = scrape(collector)
            assert failed['myguard_audit_writers{state="healthy"}'] == 2
            assert failed['myguard_audit_writers{state="failed"}'] == 1
            assert failed["myguard_audit_write_failures_total"] == 1
        finally:
            await writer.close()

    asyncio.run(run())
