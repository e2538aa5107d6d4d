# cython: language_level=3
"""What the proxy cores of one process count without a Python call (compiled); see
``corecounts_py.py`` for the twin. ``metrics.flush`` adds it to Prometheus once a second."""

QUERY = 0
STMT_EXECUTE = 1


cdef class CoreCounts:
    """Bytes relayed, and the commands the cores forwarded and ended on taught verdicts
    (``QUERY`` or ``STMT_EXECUTE``): how many, and their latency by histogram bucket."""

    def __init__(self, bounds):
        """``bounds``: the histogram's upper bounds, ascending, the last one infinite."""
        cdef Py_ssize_t i, n = len(bounds)
        if n == 0 or n > MAX_BOUNDS:
            raise ValueError(f"between 1 and {MAX_BOUNDS} bounds, not {n}")
        if bounds[n - 1] != float("inf"):
            raise ValueError("the last bound must be infinite")
        for i in range(n):
            self._bounds[i] = bounds[i]
        self._nbounds = n

    cdef void done(self, int command, double seconds) noexcept:
        """One command ended (the bucket: the first bound not below ``seconds``)."""
        cdef Py_ssize_t i = 0
        while self._bounds[i] < seconds:
            i += 1
        self._buckets[command][i] += 1
        self._count[command] += 1
        self._seconds[command] += seconds

    def record(self, int command, double seconds):
        """``done`` for Python callers (tests)."""
        if command != QUERY and command != STMT_EXECUTE:
            raise ValueError(f"unknown command {command}")
        self.done(command, seconds)

    def take(self, int command):
        """(count, count per bucket, sum of seconds) since the last take; then zero."""
        if command != QUERY and command != STMT_EXECUTE:
            raise ValueError(f"unknown command {command}")
        cdef Py_ssize_t i
        buckets = [self._buckets[command][i] for i in range(self._nbounds)]
        taken = (self._count[command], buckets, self._seconds[command])
        for i in range(self._nbounds):
            self._buckets[command][i] = 0
        self._count[command] = 0
        self._seconds[command] = 0.0
        return taken
