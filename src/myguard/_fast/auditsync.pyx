# cython: language_level=3
"""The audit writer thread's wait (compiled); ``auditsync_py.py`` is the twin and says what
it promises.

Records are written on the event loop (or copied into the tail's ring, which this thread
drains into the segment); this thread makes them durable. Doing that in a
Python loop cost the event loop a GIL hand-over on every wake-up of the thread (measured:
about 11 µs of CPU per statement at 14k statements/s). Here the thread waits, lingers and
fdatasyncs without the GIL and returns to Python only for work that needs it: callers
waiting on a future, a segment rotation, stopping, or a failed sync.
"""

from libc.errno cimport EINTR, errno
from libc.stdint cimport uint64_t

from myguard._fast.auditchain cimport Tail

cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents
    int poll(pollfd *fds, unsigned long nfds, int timeout)
    enum: POLLIN

cdef extern from "<sys/eventfd.h>" nogil:
    int eventfd(unsigned int initval, int flags)
    enum: EFD_CLOEXEC
    enum: EFD_NONBLOCK

cdef extern from "<time.h>" nogil:
    struct timespec:
        long tv_sec
        long tv_nsec
    int clock_gettime(int clk_id, timespec *tp)
    enum: CLOCK_MONOTONIC

cdef extern from "<unistd.h>" nogil:
    ssize_t read(int fd, void *buf, size_t count)
    ssize_t write(int fd, const void *buf, size_t count)
    int close(int fd)
    int fdatasync(int fd)

cdef extern from *:
    """
    static inline int mg_load(int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline void mg_store(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    static inline int mg_exchange(int *p, int v) {
        return __atomic_exchange_n(p, v, __ATOMIC_ACQ_REL);
    }
    """
    int mg_load(int *p) nogil
    void mg_store(int *p, int v) nogil
    int mg_exchange(int *p, int v) nogil

cdef enum:
    _PYTHON = 1
    _TIMEOUT = 2
    _FAILED = 3

PYTHON = _PYTHON
TIMEOUT = _TIMEOUT
FAILED = _FAILED


cdef class Syncer:
    """What the writer thread waits on; ``written`` and ``notify`` are the loop's calls."""

    cdef int _event  # eventfd: the loop wakes the thread through it
    cdef int _fd  # the segment being written
    cdef int _dirty  # written since the thread last synced
    cdef int _python  # work for the thread's Python side
    cdef int _linger_ms
    cdef Tail _tail  # None: records are in the segment already
    cdef bint _sync  # False: drain the ring only (fsync "off")
    cdef readonly int error  # errno of the failed sync or drain (FAILED)
    cdef readonly unsigned long long syncs

    def __cinit__(self, int fd, double linger, Tail tail=None, bint sync=True):
        self._event = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)
        if self._event < 0:
            raise OSError(errno, "eventfd failed")
        self._fd = fd
        self._linger_ms = <int>(linger * 1000 + 0.5)
        self._dirty = 0
        self._python = 0
        self._tail = tail
        self._sync = sync
        self.error = 0
        self.syncs = 0

    def __dealloc__(self):
        if self._event >= 0:
            close(self._event)

    def set_fd(self, int fd):
        """The segment to sync from now on (after a rotation)."""
        mg_store(&self._fd, fd)

    def written(self):
        """A record was written: sync it within the linger (a syscall only when the thread
        is not already going to)."""
        if not mg_exchange(&self._dirty, 1):
            self._kick()

    def notify(self):
        """Work for the thread's Python side is queued."""
        mg_store(&self._python, 1)
        self._kick()

    cdef void _kick(self) noexcept nogil:
        cdef uint64_t one = 1
        while write(self._event, &one, 8) < 0 and errno == EINTR:
            pass

    cdef int _drain(self, int timeout_ms) noexcept nogil:
        """Wait up to ``timeout_ms`` (-1: for ever) for a kick; 1 when one came."""
        cdef pollfd waiting
        cdef uint64_t count
        cdef int ready
        waiting.fd = self._event
        waiting.events = POLLIN
        while True:
            ready = poll(&waiting, 1, timeout_ms)
            if ready >= 0 or errno != EINTR:
                break
        if ready <= 0:
            return 0
        read(self._event, &count, 8)
        return 1

    cdef int _linger(self) noexcept nogil:
        """Wait out the linger (kicks for more records do not end it); 1 if Python work
        came meanwhile."""
        cdef timespec now
        cdef long long deadline, left
        if self._linger_ms <= 0:
            return 0
        clock_gettime(CLOCK_MONOTONIC, &now)
        deadline = now.tv_sec * 1000 + now.tv_nsec // 1000000 + self._linger_ms
        while True:
            if mg_load(&self._python):
                return 1
            clock_gettime(CLOCK_MONOTONIC, &now)
            left = deadline - (now.tv_sec * 1000 + now.tv_nsec // 1000000)
            if left <= 0:
                return 0
            self._drain(<int>left)

    cdef int _drain_ring(self) noexcept nogil:
        if self._tail is None:
            return 0
        return self._tail.drain()

    def wait(self, double timeout):
        """Block until there is Python work (PYTHON), ``timeout`` seconds pass with nothing
        written (TIMEOUT) or a sync or drain fails (FAILED, with ``error``). Meanwhile make
        what the loop writes durable: drain the ring at once (a lone record is readable in
        the segment without waiting), linger to gather more, drain again, fdatasync; all
        without the GIL."""
        cdef int timeout_ms = <int>(timeout * 1000) if timeout >= 0 else -1
        cdef int result = 0
        with nogil:
            while True:
                if mg_exchange(&self._python, 0):
                    result = _PYTHON
                    break
                if not mg_load(&self._dirty):
                    if not self._drain(timeout_ms):
                        result = _TIMEOUT
                        break
                    continue
                self.error = self._drain_ring()
                if self.error:
                    # The ring keeps them; the writer's recovery drains it on the loop.
                    mg_store(&self._dirty, 0)
                    result = _FAILED
                    break
                # Records keep arriving while we linger; only a Python task cuts it short.
                if self._linger() and mg_load(&self._python):
                    continue
                mg_store(&self._dirty, 0)  # what is written after this goes into the next sync
                self.error = self._drain_ring()
                if self.error:
                    result = _FAILED
                    break
                if not self._sync:
                    continue
                if fdatasync(mg_load(&self._fd)) != 0:
                    self.error = errno
                    result = _FAILED
                    break
                self.syncs += 1
        return result
