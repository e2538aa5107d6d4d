# cython: language_level=3
"""Chaining, framing and writing audit records (compiled); see ``auditchain_py.py`` for
the twin. ``Tail`` keys its HMAC once: keying costs more than hashing a record.
"""

import os

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.errno cimport EINTR, errno
from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from posix.time cimport CLOCK_REALTIME, clock_gettime, timespec
from posix.types cimport off_t
from posix.unistd cimport ftruncate

cdef extern from "unistd.h" nogil:
    ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset)


from myguard._fast.openssl cimport (
    HmacSha256,
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


cdef class _Hasher:
    """SHA-256, or HMAC-SHA256 under a key keyed once."""

    cdef HmacSha256 *mac  # NULL: plain SHA-256

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


cdef class Tail:
    """The end of the hash chain in the segment being written: ``append`` frames a record
    body as record ``next_record`` after ``last_hash`` and writes it at offset ``size`` of
    ``fd``. On OSError nothing of it remains in the file and the tail is unchanged."""

    cdef _Hasher _hasher
    cdef unsigned char _prev[HASH_SIZE]
    cdef public int fd
    cdef public long long size
    cdef public unsigned long long next_record
    cdef bint _truncate_pending
    # For ``offer`` (see the twin): set by the writer.
    cdef public long long header_size
    cdef public long long rotate_size
    cdef public double rotate_at
    cdef public bint accepting
    cdef public object syncer

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
        cdef Py_ssize_t size = PyBytes_GET_SIZE(body)
        cdef Py_ssize_t length = PREFIX_SIZE + size, total = HEAD_SIZE + length, done = 0
        cdef long long start = self.size
        cdef ssize_t written
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
            if self._truncate_pending:
                if ftruncate(self.fd, start) != 0:
                    error = errno
                    raise OSError(error, os.strerror(error))
                self._truncate_pending = False
            while done < total:
                written = pwrite(self.fd, frame + done, total - done, start + done)
                if written < 0:
                    if errno == EINTR:
                        continue
                    error = errno
                    # A torn record would break the chain: cut it off, or first thing next time.
                    if ftruncate(self.fd, start) != 0:
                        self._truncate_pending = True
                    raise OSError(error, os.strerror(error))
                done += written
        finally:
            free(frame)
        self.size = start + total
        memcpy(self._prev, prev, HASH_SIZE)
        self.next_record += 1
