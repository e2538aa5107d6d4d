"""What the proxy cores of one process count without a Python call: the pure-Python twin
of ``corecounts.pyx``. ``metrics.flush`` adds it to Prometheus once a second."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

QUERY = 0
STMT_EXECUTE = 1
MAX_BOUNDS = 32


class CoreCounts:
    """Bytes relayed, and the commands the cores forwarded and ended on taught verdicts
    (``QUERY`` or ``STMT_EXECUTE``): how many, and their latency by histogram bucket."""

    def __init__(self, bounds: Sequence[float]) -> None:
        """``bounds``: the histogram's upper bounds, ascending, the last one infinite."""
        n = len(bounds)
        if n == 0 or n > MAX_BOUNDS:
            raise ValueError(f"between 1 and {MAX_BOUNDS} bounds, not {n}")
        if bounds[-1] != float("inf"):
            raise ValueError("the last bound must be infinite")
        self._bounds = [float(b) for b in bounds]
        self.bytes_to_client = 0
        self.bytes_to_backend = 0
        self.cache_hits = 0
        self._buckets = [[0] * n, [0] * n]
        self._count = [0, 0]
        self._seconds = [0.0, 0.0]

    def done(self, command: int, seconds: float) -> None:
        """One command ended (the bucket: the first bound not below ``seconds``)."""
        self._buckets[command][bisect.bisect_left(self._bounds, seconds)] += 1
        self._count[command] += 1
        self._seconds[command] += seconds

    def record(self, command: int, seconds: float) -> None:
        """``done`` for Python callers (tests)."""
        if command not in (QUERY, STMT_EXECUTE):
            raise ValueError(f"unknown command {command}")
        self.done(command, seconds)

    def take(self, command: int) -> tuple[int, list[int], float]:
        """(count, count per bucket, sum of seconds) since the last take; then zero."""
        if command not in (QUERY, STMT_EXECUTE):
            raise ValueError(f"unknown command {command}")
        taken = (self._count[command], self._buckets[command], self._seconds[command])
        self._buckets[command] = [0] * len(self._bounds)
        self._count[command] = 0
        self._seconds[command] = 0.0
        return taken
