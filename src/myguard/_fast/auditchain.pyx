# cython: language_level=3
"""Chaining, framing and writing audit records (compiled); see ``auditchain_py.py`` for
the twin. ``Tail`` keys its HMAC once: keying costs more than hashing a record.

The ring: ``offer`` (the event loop's path for records nobody waits on) copies the frame
into a file mapped from a memory filesystem instead of ``pwrite``-ing it into the segment.
The copy is in the kernel as soon as it is made, so a crash of the process loses nothing
(the next start replays the ring, ``myguard.audit.ring``); the writer thread moves the
ring into the segment with one ``pwrite`` per batch (``drain``), then syncs it. Measured:
the per-record ``pwrite`` cost the loop 2.4-6 µs per statement. Layout of the ring file
(u64 words in the machine's byte order: the ring never leaves it; ``audit/segment.py``
states the same layout for the twin and ``audit/ring.py``)::

    0 magic "MGRING1\\0"   8 capacity   16 segment number of the epoch
    24 segment offset of the epoch's first byte   32 epoch start (ring position)
    40 drained (position)   48 written (position)   4096.. data, positions mod capacity

Positions only grow. A new epoch starts whenever the ring is empty, so bytes between
``drained`` and ``written`` always belong to one segment, contiguous from the epoch's
offset: draining them is one ``pwrite`` (two when they wrap).

With ``preallocate`` (the writer sets it when it syncs), ``drain`` first fills the segment
with zeros up to ``ZERO_AHEAD`` bytes beyond what it writes: a record then overwrites
blocks the file already has, and the ``fdatasync`` after it need not commit the file's
new size and blocks to the filesystem's journal (measured: half the CPU per sync; 13 %
more statements per second with ``fsync = "always"``, benchmarks/README.md). Readers
take zeros where a frame should start as the end of the records (``audit/segment.py``);
the writer cuts them off when it seals or closes the segment.
"""

import os

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.errno cimport EINTR, errno
from libc.limits cimport LLONG_MAX
from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from posix.fcntl cimport O_CLOEXEC, O_CREAT, O_RDWR, open
from posix.mman cimport MAP_FAILED, MAP_SHARED, PROT_READ, PROT_WRITE, mmap, munmap
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec
from posix.types cimport off_t
from posix.unistd cimport close, ftruncate

cdef extern from "unistd.h" nogil:
    ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)

cdef extern from "fcntl.h" nogil:
    int posix_fallocate(int fd, off_t offset, off_t length)
    enum: O_NOFOLLOW

cdef extern from "<pthread.h>" nogil:
    int pthread_mutex_init(pthread_mutex_t *mutex, void *attr)
    int pthread_mutex_destroy(pthread_mutex_t *mutex)
    int pthread_mutex_lock(pthread_mutex_t *mutex)
    int pthread_mutex_unlock(pthread_mutex_t *mutex)

cdef extern from *:
    """
    static inline unsigned long long mg_load64(const unsigned char *p) {
        return __atomic_load_n((const unsigned long long *)p, __ATOMIC_ACQUIRE);
    }
    static inline void mg_store64(unsigned char *p, unsigned long long v) {
        __atomic_store_n((unsigned long long *)p, v, __ATOMIC_RELEASE);
    }
    """
    uint64_t mg_load64(const unsigned char *p) nogil
    void mg_store64(unsigned char *p, uint64_t v) nogil

from myguard._fast.openssl cimport (
    free_hmac_sha256,
    hmac_sha256,
    new_hmac_sha256,
    sha256,
)

cdef extern from "zlib.h" nogil:
    unsigned long crc32(unsigned long crc, const unsigned char *buf, unsigned int length)

cdef enum:
    HASH_SIZE = 32
    PREFIX_SIZE = 40  # previous hash + u64 record number
    HEAD_SIZE = 8  # u32 payload length + u32 CRC32
    # The ring file's header words and where its data starts.
    R_CAPACITY = 8
    R_SEQ = 16
    R_EPOCH_OFFSET = 24
    R_EPOCH_START = 32
    R_DRAINED = 40
    R_WRITTEN = 48
    R_DATA = 4096
    ZERO_AHEAD = 1 << 20
    ZERO_CHUNK = 1 << 16

cdef unsigned char _ZEROS[ZERO_CHUNK]

RING_MAGIC = b"MGRING1\0"


cdef class _Hasher:
    """SHA-256, or HMAC-SHA256 under a key keyed once (``mac`` NULL: plain SHA-256)."""

    def __cinit__(self, bytes key):
        if key is None:
            return
        self.mac = new_hmac_sha256(
            <const unsigned char *>PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key)
        )
        if self.mac == NULL:
            raise RuntimeError("OpenSSL could not set up HMAC-SHA256 with this key")

    def __dealloc__(self):
        free_hmac_sha256(self.mac)

    cdef bint hash(self, const unsigned char *data, size_t length,
                   unsigned char *out) noexcept nogil:
        if self.mac == NULL:
            return sha256(data, length, out)
        return hmac_sha256(self.mac, data, length, out)


cdef inline void _store_le(unsigned char *at, uint64_t value, int width) noexcept nogil:
    cdef int i
    for i in range(width):
        at[i] = (value >> (8 * i)) & 0xFF


cdef int _pwrite_all(int fd, const unsigned char *data, size_t length, long long offset
                     ) noexcept nogil:
    """0, or the errno of a failed ``pwrite`` (part of the bytes may be written)."""
    cdef ssize_t written
    cdef size_t done = 0
    while done < length:
        written = pwrite(fd, data + done, length - done, offset + done)
        if written < 0:
            if errno == EINTR:
                continue
            return errno
        done += written
    return 0


cdef class Tail:
    """The end of the hash chain in the segment being written: ``append`` frames a record
    body as record ``next_record`` after ``last_hash`` and writes it at offset ``size`` of
    ``fd``. On OSError nothing of it remains in the file and the tail is unchanged.
    With a ring attached, ``offer`` puts records in the ring and ``drain`` moves them to
    the segment; ``append`` drains first, so the segment keeps the chain's order. ``seq``
    is the number of the segment behind ``fd``. ``header_size``, ``rotate_size``,
    ``rotate_at``, ``accepting`` and ``syncer`` are for ``offer`` (see the twin)."""

    def __cinit__(self):
        self._ring_fd = -1
        self._epoch_fd = -1
        self._zero_seq = 0
        self._zeroed = 0
        pthread_mutex_init(&self._lock, NULL)

    def __dealloc__(self):
        # No drain: a dropped tail is what a crash leaves, which the ring is for.
        if self._map != NULL:
            munmap(self._map, self._map_size)
        if self._ring_fd >= 0:
            close(self._ring_fd)
        pthread_mutex_destroy(&self._lock)

    def __init__(self, key, bytes last_hash, unsigned long long next_record):
        self._hasher = _Hasher(key)
        self.fd = -1
        self.size = 0
        self.last_hash = last_hash
        self.next_record = next_record
        self._truncate_pending = False
        self.header_size = 0
        self.rotate_size = 0x7FFFFFFFFFFFFFFF
        self.rotate_at = float("inf")
        self.accepting = False
        self.syncer = None
        self.seq = 0
        self.preallocate = False

    def attach_ring(self, str path, unsigned long long capacity):
        """Take records through a new, empty ring in the file at ``path`` (made or reset;
        replay an old one first). ``capacity`` bytes of data, reserved at once so that a
        full memory filesystem fails here rather than later."""
        cdef bytes encoded = path.encode()
        cdef int fd, error
        cdef size_t size = R_DATA + capacity
        cdef void *mapped
        if self._map != NULL:
            raise ValueError("a ring is attached already")
        if capacity < 4096:
            raise ValueError("a ring needs at least 4096 bytes")
        fd = open(encoded, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if fd < 0:
            error = errno
            raise OSError(error, os.strerror(error), path)
        error = 0
        if ftruncate(fd, size) != 0:
            error = errno
        else:
            error = posix_fallocate(fd, 0, size)  # returns the error, leaves errno alone
        if error == 0:
            mapped = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
            if mapped == MAP_FAILED:
                error = errno
        if error:
            close(fd)
            raise OSError(error, os.strerror(error), path)
        self._map = <unsigned char *>mapped
        self._map_size = size
        self._ring_fd = fd
        self._capacity = capacity
        for field in (R_SEQ, R_EPOCH_OFFSET, R_EPOCH_START, R_DRAINED, R_WRITTEN):
            mg_store64(self._map + <int>field, 0)
        mg_store64(self._map + R_CAPACITY, capacity)
        memcpy(self._map, PyBytes_AS_STRING(RING_MAGIC), 8)

    @property
    def ring_pending(self):
        """Bytes in the ring not yet drained into the segment (0 without a ring)."""
        if self._map == NULL:
            return 0
        return mg_load64(self._map + R_WRITTEN) - mg_load64(self._map + R_DRAINED)

    cdef int drain(self) noexcept nogil:
        """Move what the ring holds into its segment: 0, or the errno of a failed write
        (nothing counts as drained then; the next drain writes the same bytes again)."""
        cdef uint64_t drained, written, at, first
        cdef long long offset
        cdef int error = 0
        if self._map == NULL:
            return 0
        pthread_mutex_lock(&self._lock)
        drained = mg_load64(self._map + R_DRAINED)
        written = mg_load64(self._map + R_WRITTEN)
        if written != drained:
            offset = <long long>(mg_load64(self._map + R_EPOCH_OFFSET)
                                 + (drained - mg_load64(self._map + R_EPOCH_START)))
            at = drained % self._capacity
            first = min(written - drained, self._capacity - at)
            if self.preallocate:
                self._zero_ahead(offset, offset + <long long>(written - drained))
            error = _pwrite_all(self._epoch_fd, self._map + R_DATA + at, first, offset)
            if error == 0 and first < written - drained:
                error = _pwrite_all(self._epoch_fd, self._map + R_DATA,
                                    written - drained - first, offset + first)
            if error == 0:
                mg_store64(self._map + R_DRAINED, written)
        pthread_mutex_unlock(&self._lock)
        return error

    cdef void _zero_ahead(self, long long offset, long long end) noexcept nogil:
        """Zeros from ``offset`` (where the drain writes; nothing is written beyond it)
        to ``ZERO_AHEAD`` past ``end``, but not past the rotation size, unless done for
        this segment already. Best effort: when a write fails (a full disk), the zeros
        are cut off again, so they take no room the records need, and this segment's
        records extend the file as before."""
        cdef uint64_t seq = mg_load64(self._map + R_SEQ)
        cdef long long limit = min(end + ZERO_AHEAD, self.rotate_size), start
        cdef size_t length
        if seq != self._zero_seq:
            self._zero_seq, self._zeroed = seq, 0
        if end <= self._zeroed or limit <= end:
            return
        start = max(offset, self._zeroed)
        while start < limit:
            length = <size_t>min(<long long>ZERO_CHUNK, limit - start)
            if _pwrite_all(self._epoch_fd, _ZEROS, length, start):
                ftruncate(self._epoch_fd, offset)
                self._zeroed = LLONG_MAX
                return
            start += length
        self._zeroed = start

    def flush(self):
        """Drain the ring now (on the caller's thread); OSError when the write fails."""
        cdef int error
        with nogil:
            error = self.drain()
        if error:
            raise OSError(error, os.strerror(error))

    cdef bint _into_ring(self, const unsigned char *frame, uint64_t total) noexcept:
        """Copy a frame to the ring; False when it does not fit (nothing copied)."""
        cdef uint64_t drained = mg_load64(self._map + R_DRAINED)
        cdef uint64_t written = mg_load64(self._map + R_WRITTEN)
        cdef uint64_t at, first
        if written - drained + total > self._capacity:
            return False
        if written == drained:  # empty: a new epoch, at the segment's end
            mg_store64(self._map + R_SEQ, self.seq)
            mg_store64(self._map + R_EPOCH_OFFSET, <uint64_t>self.size)
            mg_store64(self._map + R_EPOCH_START, written)
            self._epoch_fd = self.fd
        at = written % self._capacity
        first = min(total, self._capacity - at)
        memcpy(self._map + R_DATA + at, frame, first)
        if first < total:
            memcpy(self._map + R_DATA, frame + first, total - first)
        mg_store64(self._map + R_WRITTEN, written + total)
        return True

    cpdef bint due(self, double now):
        """Is the segment due to rotate: it holds a record and is big or old enough?"""
        return self.size > self.header_size and (
            self.size >= self.rotate_size or now >= self.rotate_at
        )

    cpdef bint offer(self, bytes body) except -1:
        """The event loop's fast way in for a record nobody waits on: append ``body`` and
        tell the ``syncer``. False, with nothing written, when the writer must do it: not
        ``accepting``, the segment due to rotate, or the write failed (the writer's own
        attempt then reports why)."""
        cdef timespec now
        clock_gettime(CLOCK_REALTIME, &now)  # time.time(), without a Python call
        if not self.accepting or self.due(now.tv_sec + now.tv_nsec * 1e-9):
            return False
        if self._map != NULL:
            if not self._frame(body, True):
                return False
        else:
            try:
                self.append(body)
            except OSError:
                return False
        if self.syncer is not None:
            self.syncer.written()
        return True

    @property
    def last_hash(self):
        return PyBytes_FromStringAndSize(<char *>self._prev, HASH_SIZE)

    @last_hash.setter
    def last_hash(self, bytes value):
        if value is None or PyBytes_GET_SIZE(value) != HASH_SIZE:
            raise ValueError("last_hash must be 32 bytes")
        memcpy(self._prev, PyBytes_AS_STRING(value), HASH_SIZE)

    cpdef append(self, bytes body):
        self.flush()
        self._frame(body, False)

    cdef bint _frame(self, bytes body, bint to_ring) except -1:
        """Chain and frame ``body``, then copy it to the ring (False when it does not fit)
        or write it to the segment (OSError, with nothing of it left in the file)."""
        cdef Py_ssize_t size = PyBytes_GET_SIZE(body)
        cdef Py_ssize_t length = PREFIX_SIZE + size, total = HEAD_SIZE + length
        cdef long long start = self.size
        cdef int error = 0
        cdef unsigned char prev[HASH_SIZE]
        cdef unsigned char *frame = <unsigned char *>malloc(total)
        cdef unsigned char *payload = frame + HEAD_SIZE
        if frame == NULL:
            raise MemoryError()
        try:
            memcpy(payload, self._prev, HASH_SIZE)
            _store_le(payload + HASH_SIZE, self.next_record, 8)
            memcpy(payload + PREFIX_SIZE, PyBytes_AS_STRING(body), size)
            _store_le(frame, length, 4)
            _store_le(frame + 4, crc32(0, payload, <unsigned int>length), 4)
            if not self._hasher.hash(payload, length, prev):
                raise RuntimeError("OpenSSL failed to hash an audit record")
            if to_ring:
                if not self._into_ring(frame, total):
                    return False
            else:
                if self._truncate_pending:
                    if ftruncate(self.fd, start) != 0:
                        error = errno
                        raise OSError(error, os.strerror(error))
                    self._truncate_pending = False
                error = _pwrite_all(self.fd, frame, total, start)
                if error:
                    # A torn record would break the chain: cut it off, or first thing next time.
                    if ftruncate(self.fd, start) != 0:
                        self._truncate_pending = True
                    raise OSError(error, os.strerror(error))
        finally:
            free(frame)
        self.size = start + total
        memcpy(self._prev, prev, HASH_SIZE)
        self.next_record += 1
        return True
