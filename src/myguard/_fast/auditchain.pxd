# The audit chain's tail, declared for the writer thread's syncer (``auditsync``), which
# drains the tail's ring into the segment without the GIL.

from libc.stdint cimport uint64_t

from myguard._fast.openssl cimport HmacSha256

cdef extern from "<pthread.h>" nogil:
    ctypedef struct pthread_mutex_t:
        pass


cdef class _Hasher:
    cdef HmacSha256 *mac

    cdef bint hash(self, const unsigned char *data, size_t length,
                   unsigned char *out) noexcept nogil


cdef class Tail:
    cdef _Hasher _hasher
    cdef unsigned char _prev[32]
    cdef public int fd
    cdef public long long size
    cdef public unsigned long long next_record
    cdef bint _truncate_pending
    cdef public long long header_size
    cdef public long long rotate_size
    cdef public double rotate_at
    cdef public bint accepting
    cdef public object syncer
    cdef public unsigned long long seq
    # The ring (see auditchain.pyx): a mapped file on a memory filesystem.
    cdef unsigned char *_map
    cdef size_t _map_size
    cdef uint64_t _capacity
    cdef int _ring_fd
    cdef int _epoch_fd
    cdef public bint preallocate
    cdef uint64_t _zero_seq
    cdef long long _zeroed
    cdef pthread_mutex_t _lock

    cdef int drain(self) noexcept nogil
    cdef void _zero_ahead(self, long long offset, long long end) noexcept nogil
    cdef bint _into_ring(self, const unsigned char *frame, uint64_t total) noexcept
    cdef bint _frame(self, bytes body, bint to_ring) except -1
    cpdef bint due(self, double now)
    cpdef bint offer(self, bytes body) except -1
    cpdef append(self, bytes body)
