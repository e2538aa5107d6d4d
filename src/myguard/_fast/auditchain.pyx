# cython: language_level=3
"""Chaining and framing audit records (compiled); see ``auditchain_py.py`` for the twin.

The writer thread calls this once per group commit. All hashing and copying runs
without the GIL, so the thread does not hold up the event loop while it frames.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy


from myguard._fast.openssl cimport (
    EVP_MAC_CTX,
    EVP_MAC_CTX_free,
    EVP_MD_CTX,
    EVP_MD_CTX_free,
    EVP_MD_CTX_new,
    EVP_DigestFinal_ex,
    EVP_DigestInit_ex,
    EVP_DigestUpdate,
    EVP_sha256,
    hmac_sha256,
    new_hmac_sha256,
)

cdef extern from "zlib.h" nogil:
    unsigned long crc32(unsigned long crc, const unsigned char *buf, unsigned int length)

cdef enum:
    HASH_SIZE = 32
    PREFIX_SIZE = 40  # previous hash + u64 record number
    HEAD_SIZE = 8  # u32 payload length + u32 CRC32


cdef class _Hasher:
    """SHA-256, or HMAC-SHA256 under a key, with its OpenSSL context set up once per call
    of chain_frames rather than once per record."""

    cdef EVP_MD_CTX *digest
    cdef EVP_MAC_CTX *mac_ctx

    def __cinit__(self, bytes key):
        if key is None:
            self.digest = EVP_MD_CTX_new()
            if self.digest == NULL:
                raise MemoryError()
            return
        self.mac_ctx = new_hmac_sha256(
            <const unsigned char *>PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key)
        )
        if self.mac_ctx == NULL:
            raise RuntimeError("OpenSSL could not set up HMAC-SHA256 with this key")

    def __dealloc__(self):
        EVP_MD_CTX_free(self.digest)
        EVP_MAC_CTX_free(self.mac_ctx)

    cdef bint hash(self, const unsigned char *data, size_t length,
                   unsigned char *out) noexcept nogil:
        cdef unsigned int digest_len
        if self.digest != NULL:
            return (
                EVP_DigestInit_ex(self.digest, EVP_sha256(), NULL)
                and EVP_DigestUpdate(self.digest, data, length)
                and EVP_DigestFinal_ex(self.digest, out, &digest_len)
            )
        return hmac_sha256(self.mac_ctx, data, length, out)


cdef inline void _store_le(unsigned char *at, uint64_t value, int width) noexcept nogil:
    cdef int i
    for i in range(width):
        at[i] = (value >> (8 * i)) & 0xFF


def chain_frames(list bodies, bytes prev_hash, unsigned long long number, key):
    """The frames of ``bodies`` chained on from ``prev_hash`` as record ``number`` onwards:
    (frames, hash of the last record, the next record number)."""
    if PyBytes_GET_SIZE(prev_hash) != HASH_SIZE:
        raise ValueError("prev_hash must be 32 bytes")
    cdef tuple held = tuple(bodies)  # keeps every body alive while the GIL is released
    cdef Py_ssize_t count = len(held), i, total = 0, pos = 0, length
    cdef const unsigned char **starts = NULL
    cdef Py_ssize_t *sizes = NULL
    cdef _Hasher hasher = _Hasher(key)
    cdef bint failed = False
    cdef unsigned char prev[HASH_SIZE]
    cdef unsigned char *out
    cdef unsigned char *payload
    cdef bytes body
    memcpy(prev, PyBytes_AS_STRING(prev_hash), HASH_SIZE)
    starts = <const unsigned char **>malloc((count + 1) * sizeof(unsigned char *))
    sizes = <Py_ssize_t *>malloc((count + 1) * sizeof(Py_ssize_t))
    if starts == NULL or sizes == NULL:
        free(starts)
        free(sizes)
        raise MemoryError()
    try:
        for i in range(count):
            body = <bytes?>held[i]
            starts[i] = <const unsigned char *>PyBytes_AS_STRING(body)
            sizes[i] = PyBytes_GET_SIZE(body)
            total += HEAD_SIZE + PREFIX_SIZE + sizes[i]
        frames = PyBytes_FromStringAndSize(NULL, total)
        out = <unsigned char *>PyBytes_AS_STRING(frames)
        with nogil:
            for i in range(count):
                length = PREFIX_SIZE + sizes[i]
                payload = out + pos + HEAD_SIZE
                memcpy(payload, prev, HASH_SIZE)
                _store_le(payload + HASH_SIZE, number, 8)
                memcpy(payload + PREFIX_SIZE, starts[i], sizes[i])
                _store_le(out + pos, length, 4)
                _store_le(out + pos + 4, crc32(0, payload, <unsigned int>length), 4)
                if not hasher.hash(payload, length, prev):
                    failed = True
                    break
                number += 1
                pos += HEAD_SIZE + length
    finally:
        free(starts)
        free(sizes)
    if failed:
        raise RuntimeError("OpenSSL failed to hash an audit record")
    return frames, PyBytes_FromStringAndSize(<char *>prev, HASH_SIZE), number
