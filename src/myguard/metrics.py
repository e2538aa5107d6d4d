"""Prometheus metrics, served on the admin listener's /metrics.

With several workers the supervisor sets PROMETHEUS_MULTIPROC_DIR before starting them,
so every worker's values land in shared files that the supervisor's /metrics sums.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
BACKEND_CONNECT_SECONDS = Histogram(
    "myguard_backend_connect_seconds",
    "Time to connect and log in to a backend",
    ["backend"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
STATEMENT_SECONDS = Histogram(
    "myguard_statement_seconds",
    "Time from a command's arrival to the end of its response",
    ["command"],
    buckets=(0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 30),
)
POLICY_CACHE = Counter(
    "myguard_policy_cache_lookups", "Statement-analysis cache lookups", ["result"]
)
POLICY_CACHE_HIT = POLICY_CACHE.labels("hit")
POLICY_CACHE_MISS = POLICY_CACHE.labels("miss")
ERRORS = Counter("myguard_errors_total", "Errors by kind", ["kind"])

BYTES_TO_CLIENT = BYTES.labels("to_client")
BYTES_TO_BACKEND = BYTES.labels("to_backend")

_STATEMENT_CHILDREN: dict[tuple[str, str], tuple] = {}


def statement_done(command: str, outcome: str, seconds: float) -> None:
    """Count one command and its latency; label children are looked up once (hot path)."""
    children = _STATEMENT_CHILDREN.get((command, outcome))
    if children is None:
        children = (STATEMENTS.labels(command, outcome), STATEMENT_SECONDS.labels(command))
        _STATEMENT_CHILDREN[(command, outcome)] = children
    children[0].inc()
    children[1].observe(seconds)
