# What the proxy cores count without a Python call, declared for proxycore.

cdef enum:
    MAX_BOUNDS = 32

cdef class CoreCounts:
    cdef public unsigned long long bytes_to_client
    cdef public unsigned long long bytes_to_backend
    cdef public unsigned long long cache_hits
    cdef double _bounds[MAX_BOUNDS]
    cdef Py_ssize_t _nbounds
    cdef unsigned long long _buckets[2][MAX_BOUNDS]
    cdef unsigned long long _count[2]
    cdef double _seconds[2]

    cdef void done(self, int command, double seconds) noexcept
