# cython: language_level=3
"""Packing a msgpack map from keys, values and already-packed pairs (compiled); see
``recordpack_py.py`` for the twin. Strings, floats, booleans and non-negative integers
are written here, byte for byte as msgpack-python writes them; any other value is
handed to msgpack itself."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_AsUTF8AndSize
from libc.stdint cimport uint64_t
from libc.string cimport memcpy

import msgpack

cdef enum:
    V_SKIP = 0
    V_STR = 1
    V_FLOAT = 2
    V_TRUE = 3
    V_FALSE = 4
    V_UINT = 5
    V_PACKED = 6


cdef inline Py_ssize_t _str_head(Py_ssize_t n) noexcept:
    if n <= 31:
        return 1
    if n <= 0xFF:
        return 2
    if n <= 0xFFFF:
        return 3
    return 5


cdef inline Py_ssize_t _uint_size(uint64_t v) noexcept:
    if v < 0x80:
        return 1
    if v <= 0xFF:
        return 2
    if v <= 0xFFFF:
        return 3
    if v <= 0xFFFFFFFF:
        return 5
    return 9


cdef inline Py_ssize_t _map_head(Py_ssize_t n) noexcept:
    if n <= 15:
        return 1
    if n <= 0xFFFF:
        return 3
    return 5


cdef inline unsigned char *_be(unsigned char *out, uint64_t v, int width) noexcept:
    cdef int i
    for i in range(width):
        out[i] = (v >> (8 * (width - 1 - i))) & 0xFF
    return out + width


cdef inline unsigned char *_put_str(unsigned char *out, const char *s, Py_ssize_t n) noexcept:
    if n <= 31:
        out[0] = 0xA0 | n
        out += 1
    elif n <= 0xFF:
        out[0] = 0xD9
        out = _be(out + 1, n, 1)
    elif n <= 0xFFFF:
        out[0] = 0xDA
        out = _be(out + 1, n, 2)
    else:
        out[0] = 0xDB
        out = _be(out + 1, n, 4)
    memcpy(out, s, n)
    return out + n


cdef inline unsigned char *_put_uint(unsigned char *out, uint64_t v) noexcept:
    if v < 0x80:
        out[0] = <unsigned char>v
        return out + 1
    if v <= 0xFF:
        out[0] = 0xCC
        return _be(out + 1, v, 1)
    if v <= 0xFFFF:
        out[0] = 0xCD
        return _be(out + 1, v, 2)
    if v <= 0xFFFFFFFF:
        out[0] = 0xCE
        return _be(out + 1, v, 4)
    out[0] = 0xCF
    return _be(out + 1, v, 8)


def map_header(Py_ssize_t count):
    """The msgpack header of a map with ``count`` pairs."""
    cdef unsigned char buf[5]
    cdef unsigned char *end
    if count <= 15:
        buf[0] = 0x80 | count
        end = buf + 1
    elif count <= 0xFFFF:
        buf[0] = 0xDE
        end = _be(buf + 1, count, 2)
    else:
        buf[0] = 0xDF
        end = _be(buf + 1, count, 4)
    return PyBytes_FromStringAndSize(<char *>buf, end - buf)


def pack_map(tuple keys, tuple values, bytes tail, Py_ssize_t tail_count):
    """A msgpack map of ``keys`` to ``values`` (pairs whose value is None left out),
    followed by ``tail``: ``tail_count`` pairs packed earlier."""
    return _pack_map(keys, values, tail, tail_count)


cdef class StatementHead:
    """What the statement records of one session and decision begin with: ``count``
    pairs packed in ``data``; ``pack`` adds a statement's own fields, in the order of
    ``keys`` (the record type's code first, then ``at`` and the rest as ``pack`` takes
    them; docs/audit-format.md names them). Statement text beyond ``max_text``
    characters is cut (a 20 MB BLOB INSERT is not audit data)."""

    def __init__(self, tuple keys, code, bytes data, Py_ssize_t count, Py_ssize_t max_text):
        if len(keys) != 13:
            raise ValueError("a statement record has 13 fields of its own")
        self.keys = keys
        self.code = code
        self.data = data
        self.count = count
        self.max_text = max_text

    cpdef bytes pack(self, double at, str text, database, fingerprint, masked, approval_id,
                     rows, affected, error_code, started, duration, intent_id):
        """The record body (fields that are None left out)."""
        if len(text) > self.max_text:
            text = f"{text[:self.max_text]}... [{len(text) - self.max_text} more characters]"
        return _pack_map(
            self.keys,
            (self.code, at, text, database, fingerprint, masked, approval_id, rows, affected,
             error_code, started, duration, intent_id),
            self.data,
            self.count,
        )


cdef bytes _pack_map(tuple keys, tuple values, bytes tail, Py_ssize_t tail_count):
    cdef Py_ssize_t n = len(keys), i, size = 0, count = 0, length
    if len(values) != n:
        raise ValueError("keys and values differ in length")
    if n > 32:
        raise ValueError("pack_map takes at most 32 keys")
    cdef int kinds[32]
    cdef const char *texts[32]
    cdef Py_ssize_t lengths[32]
    cdef const char *key_texts[32]
    cdef Py_ssize_t key_lengths[32]
    cdef uint64_t uints[32]
    cdef double floats[32]
    cdef list packed = [None] * n  # keeps fallback encodings alive
    cdef object value
    for i in range(n):
        value = values[i]
        if value is None:
            kinds[i] = V_SKIP
            continue
        count += 1
        key_texts[i] = PyUnicode_AsUTF8AndSize(keys[i], &key_lengths[i])
        size += _str_head(key_lengths[i]) + key_lengths[i]
        if type(value) is str:
            kinds[i] = V_STR
            texts[i] = PyUnicode_AsUTF8AndSize(value, &lengths[i])
            size += _str_head(lengths[i]) + lengths[i]
        elif type(value) is float:
            kinds[i] = V_FLOAT
            floats[i] = value
            size += 9
        elif value is True or value is False:
            kinds[i] = V_TRUE if value else V_FALSE
            size += 1
        elif type(value) is int and 0 <= value <= 0xFFFFFFFFFFFFFFFF:
            kinds[i] = V_UINT
            uints[i] = value
            size += _uint_size(uints[i])
        else:
            kinds[i] = V_PACKED
            packed[i] = msgpack.packb(value)
            texts[i] = PyBytes_AS_STRING(packed[i])
            lengths[i] = PyBytes_GET_SIZE(packed[i])
            size += lengths[i]
    cdef Py_ssize_t total = count + tail_count
    length = PyBytes_GET_SIZE(tail)
    size += _map_head(total) + length
    out = PyBytes_FromStringAndSize(NULL, size)
    cdef unsigned char *p = <unsigned char *>PyBytes_AS_STRING(out)
    cdef uint64_t bits
    if total <= 15:
        p[0] = 0x80 | total
        p += 1
    elif total <= 0xFFFF:
        p[0] = 0xDE
        p = _be(p + 1, total, 2)
    else:
        p[0] = 0xDF
        p = _be(p + 1, total, 4)
    for i in range(n):
        if kinds[i] == V_SKIP:
            continue
        p = _put_str(p, key_texts[i], key_lengths[i])
        if kinds[i] == V_STR:
            p = _put_str(p, texts[i], lengths[i])
        elif kinds[i] == V_FLOAT:
            p[0] = 0xCB
            memcpy(&bits, &floats[i], 8)
            p = _be(p + 1, bits, 8)
        elif kinds[i] == V_TRUE:
            p[0] = 0xC3
            p += 1
        elif kinds[i] == V_FALSE:
            p[0] = 0xC2
            p += 1
        elif kinds[i] == V_UINT:
            p = _put_uint(p, uints[i])
        else:
            memcpy(p, texts[i], lengths[i])
            p += lengths[i]
    memcpy(p, PyBytes_AS_STRING(tail), length)
    return out
