"""Prometheus metrics, served on the admin listener's /metrics.

With several workers the supervisor sets PROMETHEUS_MULTIPROC_DIR before starting them,
so every worker's values land in shared files that the supervisor's /metrics sums; it adds
its own audit chain (approval steps) to the audit metrics (``WithOwnAudit``).

Per-statement metrics (commands, latency, bytes, policy cache) are tallied in plain
numbers and added to Prometheus by ``flush()``: once a second, before every /metrics
answer of a single process, and at shutdown. In multiprocess mode each Prometheus update
is a lock and an mmap write (about 1 us), and a point select would make seven.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from myguard._fast import load

SESSIONS_OPEN = Gauge(
    "myguard_sessions_open",
    "Client sessions currently open",
    ["backend"],
    multiprocess_mode="livesum",
)
LOGINS = Counter("myguard_logins_total", "Login attempts by outcome", ["backend", "outcome"])
STATEMENTS = Counter(
    "myguard_statements_total", "Commands handled, by command and outcome", ["command", "outcome"]
)
BYTES = Counter("myguard_bytes_total", "Bytes relayed", ["direction"])
_CONNECT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
BACKEND_CONNECT_SECONDS = Histogram(
    "myguard_backend_connect_seconds",
    "Time to get a session its backend connection (from the pool, or a new login)",
    ["backend"],
    buckets=_CONNECT_BUCKETS,
)
_STATEMENT_BUCKETS = (0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30)
STATEMENT_SECONDS = Histogram(
    "myguard_statement_seconds",
    "Time from a command's arrival to the end of its response",
    ["command"],
    buckets=_STATEMENT_BUCKETS,
)
POLICY_CACHE = Counter(
    "myguard_policy_cache_lookups", "Statement-analysis cache lookups", ["result"]
)
ERRORS = Counter("myguard_errors_total", "Errors by kind", ["kind"])
# Backend connection pools (backend/pool.py), per backend, summed over the workers. Set
# from the pools' own counts by flush(): a login costs no Prometheus update for them.
POOL_CONNECTIONS = Gauge(
    "myguard_backend_pool_connections",
    "Pooled backend connections by state (idle, in_use; size = both plus opening)",
    ["backend", "state"],
    multiprocess_mode="livesum",
)
POOL_MAX = Gauge(
    "myguard_backend_pool_max",
    "Connections the pools may have (max per worker, summed)",
    ["backend"],
    multiprocess_mode="livesum",
)
POOL_WAITING = Gauge(
    "myguard_backend_pool_waiting",
    "Logins waiting for a pooled connection now",
    ["backend"],
    multiprocess_mode="livesum",
)
POOL_CHECKOUTS = Counter(
    "myguard_backend_pool_checkouts",
    "Connections handed to sessions, by whether an idle one was reused",
    ["backend", "result"],
)
POOL_WAITS = Counter(
    "myguard_backend_pool_waits",
    "Logins that waited because max connections were in use",
    ["backend"],
)
POOL_RESETS = Counter(
    "myguard_backend_pool_resets", "Connections reset on their way back to the pool", ["backend"]
)
POOL_UNTOUCHED = Counter(
    "myguard_backend_pool_untouched",
    "Connections back in the pool without a reset: their session sent them nothing",
    ["backend"],
)
POOL_OPENED = Counter(
    "myguard_backend_pool_opened", "Backend connections opened by the pool", ["backend"]
)
POOL_CLOSED = Counter(
    "myguard_backend_pool_closed", "Backend connections closed by the pool", ["backend"]
)
POOL_FAILURES = Counter(
    "myguard_backend_pool_failures",
    "Pool failures: connect (backend unreachable), broken (found dead and replaced),"
    " not_reusable (closed at session end: killed, mid-response), exhausted (wait timed out)",
    ["backend", "reason"],
)
# The audit trail's writers (audit/writer.py), summed over the processes. Set from the
# writers' own state by flush(): a statement's record costs no Prometheus update.
AUDIT_WRITERS = Gauge(
    "myguard_audit_writers",
    "Audit chains being written, by state: healthy, or failed (statements refused until"
    " the writer recovers, unless the environment fails open)",
    ["state"],
    multiprocess_mode="livesum",
)
AUDIT_RING_PENDING = Gauge(
    "myguard_audit_ring_pending_bytes",
    "Records taken into the audit rings and not yet written into their segments",
    multiprocess_mode="livesum",
)
AUDIT_RECORDS = Counter("myguard_audit_records", "Records appended to the audit chains")
AUDIT_FAILURES = Counter(
    "myguard_audit_write_failures", "Times an audit writer stopped taking records (write failed)"
)

FLUSH_INTERVAL = 1.0
_pools: list[tuple[object, dict[str, int]]] = []  # (pool, counts already added)
_writers: list[tuple[object, dict[str, int]]] = []  # (audit writer, counts already added)
_LATENCY_BOUNDS = [*_STATEMENT_BUCKETS, float("inf")]
_CONNECT_BOUNDS = [*_CONNECT_BUCKETS, float("inf")]


@dataclass(slots=True)
class Tally:
    """Per-statement counts not yet added to Prometheus (the event loop's thread only)."""

    bytes_to_client: int = 0
    bytes_to_backend: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    statements: dict[tuple[str, str], int] = field(default_factory=dict)
    # command -> (count per latency bucket, sum of seconds)
    latency: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    # Per login: (backend, outcome) -> count; backend -> sessions opened minus closed;
    # backend -> (count per connect-time bucket, sum of seconds)
    logins: dict[tuple[str, str], int] = field(default_factory=dict)
    sessions_open: dict[str, int] = field(default_factory=dict)
    connect: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)


tally = Tally()
_counts = load("corecounts")
# What the proxy cores count themselves: bytes, and the commands they end on taught verdicts.
core_counts = _counts.CoreCounts(_LATENCY_BOUNDS)
_CORE_COMMANDS = (("query", _counts.QUERY), ("stmt_execute", _counts.STMT_EXECUTE))


def statement_done(command: str, outcome: str, seconds: float) -> None:
    """Count one command and its latency."""
    key = (command, outcome)
    statements = tally.statements
    statements[key] = statements.get(key, 0) + 1
    latency = tally.latency.get(command)
    if latency is None:
        latency = tally.latency[command] = ([0] * len(_LATENCY_BOUNDS), [0.0])
    latency[0][bisect.bisect_left(_LATENCY_BOUNDS, seconds)] += 1
    latency[1][0] += seconds


def login(backend: str, outcome: str) -> None:
    key = (backend, outcome)
    tally.logins[key] = tally.logins.get(key, 0) + 1


def session_opened(backend: str, change: int) -> None:
    tally.sessions_open[backend] = tally.sessions_open.get(backend, 0) + change


def backend_connected(backend: str, seconds: float) -> None:
    entry = tally.connect.get(backend)
    if entry is None:
        entry = tally.connect[backend] = ([0] * len(_CONNECT_BOUNDS), [0.0])
    entry[0][bisect.bisect_left(_CONNECT_BOUNDS, seconds)] += 1
    entry[1][0] += seconds


def _add_histogram(child, counts: list[int], total: float) -> None:  # noqa: ANN001
    # Histogram.observe() adds 1 to one bucket (counts are made cumulative when
    # collected); adding a bucket's count at once gives the same exposition.
    for bucket, count in zip(child._buckets, counts, strict=True):
        if count:
            bucket.inc(count)
    child._sum.inc(total)


def flush() -> None:
    """Add the tallied counts to the Prometheus values."""
    t = tally
    c = core_counts
    for counter, amount in (
        (BYTES.labels("to_client"), t.bytes_to_client + c.bytes_to_client),
        (BYTES.labels("to_backend"), t.bytes_to_backend + c.bytes_to_backend),
        (POLICY_CACHE.labels("hit"), t.cache_hits + c.cache_hits),
        (POLICY_CACHE.labels("miss"), t.cache_misses),
    ):
        if amount:
            counter.inc(amount)
    t.bytes_to_client = t.bytes_to_backend = t.cache_hits = t.cache_misses = 0
    c.bytes_to_client = c.bytes_to_backend = c.cache_hits = 0
    for command, index in _CORE_COMMANDS:
        count, counts, total = c.take(index)
        if count:
            STATEMENTS.labels(command, "ok").inc(count)
            _add_histogram(STATEMENT_SECONDS.labels(command), counts, total)
    statements, t.statements = t.statements, {}
    for (command, outcome), count in statements.items():
        STATEMENTS.labels(command, outcome).inc(count)
    latency, t.latency = t.latency, {}
    for command, (counts, total) in latency.items():
        _add_histogram(STATEMENT_SECONDS.labels(command), counts, total[0])
    logins, t.logins = t.logins, {}
    for (backend, outcome), count in logins.items():
        LOGINS.labels(backend, outcome).inc(count)
    opened, t.sessions_open = t.sessions_open, {}
    for backend, change in opened.items():
        if change:
            SESSIONS_OPEN.labels(backend).inc(change)
    connect, t.connect = t.connect, {}
    for backend, (counts, total) in connect.items():
        _add_histogram(BACKEND_CONNECT_SECONDS.labels(backend), counts, total[0])
    for pool, reported in _pools:
        _flush_pool(pool, reported)
    if _writers:
        _flush_audit()


def watch_pool(pool: object) -> None:
    """Report ``pool`` (a backend.pool.BackendPool) at every flush."""
    _pools.append((pool, {}))


def _flush_pool(pool, reported: dict[str, int]) -> None:  # noqa: ANN001 - BackendPool
    name = pool.config.name
    idle = pool.idle
    POOL_CONNECTIONS.labels(name, "idle").set(idle)
    POOL_CONNECTIONS.labels(name, "in_use").set(pool.in_use)
    POOL_CONNECTIONS.labels(name, "size").set(pool.total)
    POOL_MAX.labels(name).set(pool.limit if pool.enabled else 0)
    POOL_WAITING.labels(name).set(pool.waiting)
    c = pool.counters
    now = {
        "reused": c.reused,
        "new": c.checkouts - c.reused,
        "waits": c.waits,
        "resets": c.resets,
        "untouched": c.untouched,
        "opened": c.opened,
        "closed": c.closed,
        **{f"failure:{k}": v for k, v in c.failures.items()},
    }
    for key, value in now.items():
        delta = value - reported.get(key, 0)
        if delta <= 0:
            continue
        reported[key] = value
        if key in ("reused", "new"):
            POOL_CHECKOUTS.labels(name, key).inc(delta)
        elif key == "waits":
            POOL_WAITS.labels(name).inc(delta)
        elif key == "resets":
            POOL_RESETS.labels(name).inc(delta)
        elif key == "untouched":
            POOL_UNTOUCHED.labels(name).inc(delta)
        elif key == "opened":
            POOL_OPENED.labels(name).inc(delta)
        elif key == "closed":
            POOL_CLOSED.labels(name).inc(delta)
        else:
            POOL_FAILURES.labels(name, key.split(":", 1)[1]).inc(delta)


def watch_audit(writer: object) -> None:
    """Report ``writer`` (an audit.writer.AuditWriter) at every flush."""
    tail = writer.tail  # type: ignore[attr-defined]
    _writers.append((writer, {"records": tail.next_record, "failures": 0}))


def _flush_audit() -> None:
    healthy = pending = 0
    records = failures = 0
    for writer, reported in _writers:
        healthy += writer.healthy
        pending += writer.tail.ring_pending
        records += writer.tail.next_record - reported["records"]
        failures += writer.failures - reported["failures"]
        reported["records"], reported["failures"] = writer.tail.next_record, writer.failures
    AUDIT_WRITERS.labels("healthy").set(healthy)
    AUDIT_WRITERS.labels("failed").set(len(_writers) - healthy)
    AUDIT_RING_PENDING.set(pending)
    if records > 0:
        AUDIT_RECORDS.inc(records)
    if failures > 0:
        AUDIT_FAILURES.inc(failures)


class WithOwnAudit(Collector):
    """The supervisor's collector: the workers' values (``inner``, their metric files) with
    the supervisor's own audit chain (approval steps) added to the audit families, so the
    writers an alert counts are every chain's."""

    def __init__(self, inner: Collector) -> None:
        self._inner = inner
        self._writer: Any = None  # an audit.writer.AuditWriter
        self._first_record = 0

    def watch(self, writer: Any) -> None:
        """Add ``writer``'s state and the records it appends from now on."""
        self._writer = writer
        self._first_record = writer.tail.next_record

    def collect(self) -> Iterable[Metric]:
        w = self._writer
        if w is None:
            yield from self._inner.collect()
            return
        own: dict[str, dict[str, float]] = {  # family: {state label, or "": value}
            "myguard_audit_writers": {"healthy": float(w.healthy), "failed": float(not w.healthy)},
            "myguard_audit_ring_pending_bytes": {"": float(w.tail.ring_pending)},
            "myguard_audit_records": {"": float(w.tail.next_record - self._first_record)},
            "myguard_audit_write_failures": {"": float(w.failures)},
        }
        for family in self._inner.collect():
            values = own.pop(family.name, None)
            if values is not None:
                _add(family, values)
            yield family
        for metric in (AUDIT_WRITERS, AUDIT_RING_PENDING, AUDIT_RECORDS, AUDIT_FAILURES):
            described = metric.describe()[0]
            values = own.get(described.name)
            if values is not None:  # no worker has reported it yet
                family = Metric(described.name, described.documentation, described.type)
                _add(family, values)
                yield family


def _add(family: Metric, values: dict[str, float]) -> None:
    """Add ``values`` (by ``state`` label, "" for none) to ``family``'s samples."""
    name = family.name + "_total" if family.type == "counter" else family.name
    samples = []
    for sample in family.samples:
        if sample.name == name:
            sample = sample._replace(
                value=sample.value + values.pop(sample.labels.get("state", ""), 0.0)
            )
        samples.append(sample)
    for state, value in values.items():
        samples.append(Sample(name, {"state": state} if state else {}, value))
    family.samples = samples


async def flush_periodically(interval: float = FLUSH_INTERVAL) -> None:
    """Run ``flush()`` every ``interval`` seconds until cancelled (then once more)."""
    try:
        while True:
            await asyncio.sleep(interval)
            flush()
    finally:
        flush()
