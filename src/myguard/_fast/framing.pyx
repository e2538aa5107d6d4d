# cython: language_level=3
"""Packet framing (compiled); see ``framing_py.py`` for the twin and the packet format.

The receive buffer keeps a read offset instead of deleting what it hands out, and holds a
bytes object fed into an empty buffer as it is: relaying raw bytes (``feed`` then
``take``) copies nothing, and a 16 MiB+ packet arriving in many chunks is appended to one
bytearray, compacted only once the consumed part outweighs the rest.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport (
    PyByteArray_AS_STRING,
    PyByteArray_FromStringAndSize,
    PyByteArray_GET_SIZE,
)
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcpy

from myguard.protocol.errors import (
    ER_NET_PACKET_TOO_LARGE,
    ER_NET_PACKETS_OUT_OF_ORDER,
    ProtocolError,
)

MAX_FRAGMENT = 0xFFFFFF

cdef enum:
    _MAX = 0xFFFFFF


cdef class PacketBuffer:
    """Receive buffer that yields whole logical packets and checks sequence ids."""

    def __init__(self, long long max_payload):
        self.max_payload = max_payload
        self.checks_sequence = True
        self._reset()

    cdef inline void _reset(self):
        self._data = b""
        self._appendable = False
        self._start = 0

    cdef inline Py_ssize_t _size(self):
        if self._appendable:
            return PyByteArray_GET_SIZE(self._data)
        return PyBytes_GET_SIZE(self._data)

    cdef inline const unsigned char* _ptr(self):
        if self._appendable:
            return <const unsigned char*>PyByteArray_AS_STRING(self._data)
        return <const unsigned char*>PyBytes_AS_STRING(self._data)

    def __len__(self):
        return self._size() - self._start

    cpdef feed(self, data):
        cdef bytearray grown
        cdef Py_ssize_t size = self._size()
        if self._start == size:
            if type(data) is bytes:
                self._data = data
                self._appendable = False
                self._start = 0
                return
            grown = bytearray()
            grown += data  # the twin's operation, so other types fail the same way
            self._data = grown
            self._appendable = True
            self._start = 0
            return
        if not self._appendable:
            grown = PyByteArray_FromStringAndSize(
                <const char*>self._ptr() + self._start, size - self._start
            )
            self._data = grown
            self._appendable = True
            self._start = 0
        else:
            grown = self._data
            # Drop the consumed prefix once it is at least as big as the unread rest, so
            # each byte is moved at most a constant number of times.
            if self._start and self._start * 2 >= size:
                del grown[:self._start]
                self._start = 0
        grown += data

    cpdef take(self):
        """Remove and return everything buffered (for raw relaying)."""
        cdef Py_ssize_t size = self._size()
        if self._start == size:
            self._reset()
            return b""
        if not self._appendable and self._start == 0:
            data = self._data
        else:
            data = PyBytes_FromStringAndSize(<const char*>self._ptr() + self._start,
                                             size - self._start)
        self._reset()
        return data

    cpdef next_packet(self, long long seq):
        """Return ``(payload, next_seq)`` for the next complete logical packet, or None.

        ``seq`` is the sequence id the first fragment must carry (any, and the next
        follows it, when ``checks_sequence`` is off).
        """
        cdef Py_ssize_t size = self._size()
        cdef const unsigned char* p = self._ptr() + self._start
        cdef Py_ssize_t avail = size - self._start, pos = 0, length, total = 0, fragments = 0
        cdef long long expected = seq, got
        cdef char* out
        while True:
            if avail - pos < 4:
                return None
            length = p[pos] | (p[pos + 1] << 8) | (p[pos + 2] << 16)
            got = p[pos + 3]
            if got != expected:
                if self.checks_sequence:
                    raise ProtocolError(
                        f"Got packets out of order (expected sequence id {expected}, got {got})",
                        ER_NET_PACKETS_OUT_OF_ORDER,
                    )
                expected = got
            total += length
            if total > self.max_payload:
                raise ProtocolError(
                    f"Got a packet bigger than 'max_allowed_packet' bytes ({self.max_payload})",
                    ER_NET_PACKET_TOO_LARGE,
                )
            if avail - pos - 4 < length:
                return None
            pos += 4 + length
            expected = (expected + 1) & 0xFF
            fragments += 1
            if length < _MAX:
                break
        if fragments == 1:
            payload = PyBytes_FromStringAndSize(<const char*>p + 4, length)
        else:
            payload = PyBytes_FromStringAndSize(NULL, total)
            out = PyBytes_AS_STRING(payload)
            pos = 0
            total = 0
            while True:
                length = p[pos] | (p[pos + 1] << 8) | (p[pos + 2] << 16)
                memcpy(out + total, p + pos + 4, length)
                total += length
                pos += 4 + length
                if length < _MAX:
                    break
        self._start += pos
        if self._start == size:
            self._reset()  # let a large buffer go, and make the next feed copy-free again
        return payload, expected


cpdef build_packets(payload, long long seq):
    """Frame ``payload`` as one or more packets; return the bytes and the next sequence id."""
    cdef Py_buffer view
    cdef Py_ssize_t n, pos = 0, chunk, w = 0
    cdef unsigned char* o
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        if seq < 0 or seq > 255:
            raise ValueError("bytes must be in range(0, 256)")
        n = view.len
        out = PyBytes_FromStringAndSize(NULL, n + 4 * (n // _MAX + 1))
        o = <unsigned char*>PyBytes_AS_STRING(out)
        while True:
            chunk = min(n - pos, <Py_ssize_t>_MAX)
            o[w] = chunk & 0xFF
            o[w + 1] = (chunk >> 8) & 0xFF
            o[w + 2] = chunk >> 16
            o[w + 3] = <unsigned char>seq
            memcpy(o + w + 4, <const char*>view.buf + pos, chunk)
            w += 4 + chunk
            pos += chunk
            seq = (seq + 1) & 0xFF
            if chunk < _MAX:
                return out, seq
    finally:
        PyBuffer_Release(&view)
