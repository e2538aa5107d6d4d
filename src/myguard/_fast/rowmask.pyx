# cython: language_level=3
"""Row rewriting for masked result sets (compiled); see ``rowmask_py.py`` for the twin.

Each row is scanned once to find cell boundaries, the cell functions run on the masked
cells only, and the new row is written into one preallocated bytes object: untouched
cells are memcpy'd as raw runs.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from myguard.protocol.column_types import BINARY_FIXED_WIDTH, BINARY_TEMPORAL
from myguard.protocol.errors import ProtocolError

cdef enum:
    _LENENC = -1  # binary cell layouts besides fixed widths (BINARY_FIXED_WIDTH)
    _TEMPORAL = -2
    _MAX_PAYLOAD = 0xFFFFFF


cdef inline Py_ssize_t _lenenc_size(Py_ssize_t n):
    if n < 0xFB:
        return 1
    if n < 0x10000:
        return 3
    if n < 0x1000000:
        return 4
    return 9


cdef inline Py_ssize_t _put_lenenc(unsigned char* out, Py_ssize_t n):
    cdef int i
    if n < 0xFB:
        out[0] = <unsigned char>n
        return 1
    if n < 0x10000:
        out[0] = 0xFC
        out[1] = n & 0xFF
        out[2] = (n >> 8) & 0xFF
        return 3
    if n < 0x1000000:
        out[0] = 0xFD
        out[1] = n & 0xFF
        out[2] = (n >> 8) & 0xFF
        out[3] = (n >> 16) & 0xFF
        return 4
    out[0] = 0xFE
    for i in range(8):
        out[1 + i] = (n >> (8 * i)) & 0xFF
    return 9


cdef inline Py_ssize_t _lenenc_cell(const unsigned char* p, Py_ssize_t pos, Py_ssize_t size,
                                    Py_ssize_t* value_start) except -1:
    """Sets value_start and returns the end of the length-encoded string at pos."""
    cdef unsigned long long length
    cdef Py_ssize_t start
    cdef int i
    if pos >= size:
        raise ProtocolError("malformed row: truncated")
    cdef unsigned char first = p[pos]
    if first < 0xFB:
        start = pos + 1
        length = first
    elif first == 0xFC:
        if pos + 3 > size:
            raise ProtocolError("malformed row: truncated")
        start = pos + 3
        length = p[pos + 1] | (p[pos + 2] << 8)
    elif first == 0xFD:
        if pos + 4 > size:
            raise ProtocolError("malformed row: truncated")
        start = pos + 4
        length = p[pos + 1] | (p[pos + 2] << 8) | (p[pos + 3] << 16)
    elif first == 0xFE:
        if pos + 9 > size:
            raise ProtocolError("malformed row: truncated")
        start = pos + 9
        length = 0
        for i in range(8):
            length |= (<unsigned long long>p[pos + 1 + i]) << (8 * i)
    else:
        raise ProtocolError("malformed row: bad length-encoded string")
    if length > <unsigned long long>(size - start):
        raise ProtocolError("malformed row: truncated")
    value_start[0] = start
    return start + <Py_ssize_t>length


cdef class RowMasker:
    """Rewrites the rows of one result set, masking the cells that have a cell function."""

    cdef readonly int columns
    cdef readonly bint masks
    cdef list cells
    cdef list results
    cdef int* layouts
    cdef Py_ssize_t* starts  # where each cell begins
    cdef Py_ssize_t* ends  # where each cell ends

    def __cinit__(self, types, cells):
        n = len(types)
        self.layouts = <int*>malloc(max(n, 1) * sizeof(int))
        self.starts = <Py_ssize_t*>malloc(max(n, 1) * sizeof(Py_ssize_t))
        self.ends = <Py_ssize_t*>malloc(max(n, 1) * sizeof(Py_ssize_t))
        if self.layouts == NULL or self.starts == NULL or self.ends == NULL:
            raise MemoryError()

    def __dealloc__(self):
        free(self.layouts)
        free(self.starts)
        free(self.ends)

    def __init__(self, types, cells):
        if len(types) != len(cells):
            raise ValueError("one cell function (or None) per column is needed")
        self.columns = len(types)
        self.cells = list(cells)
        self.results = [None] * self.columns
        self.masks = any(c is not None for c in self.cells)
        for i, t in enumerate(types):
            width = BINARY_FIXED_WIDTH.get(t)
            if width is not None:
                self.layouts[i] = width
            elif t in BINARY_TEMPORAL:
                self.layouts[i] = _TEMPORAL
            else:
                self.layouts[i] = _LENENC

    def rewrite_text_row(self, bytes payload not None):
        """A text-protocol row payload with the masked cells replaced."""
        if not self.masks:
            return payload
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(payload)
        cdef Py_ssize_t size = PyBytes_GET_SIZE(payload)
        cdef Py_ssize_t pos = 0, value_start = 0, total = size, n
        cdef int i
        cdef list cells = self.cells, results = self.results
        for i in range(self.columns):
            self.starts[i] = pos
            if pos < size and p[pos] == 0xFB:
                pos += 1
                self.ends[i] = pos
                if cells[i] is not None:
                    new = cells[i](None)
                else:
                    continue
            else:
                pos = _lenenc_cell(p, pos, size, &value_start)
                self.ends[i] = pos
                if cells[i] is None:
                    continue
                new = cells[i](PyBytes_FromStringAndSize(<const char*>p + value_start,
                                                         pos - value_start))
            results[i] = new
            if new is None:
                total += 1 - (pos - self.starts[i])
            else:
                n = PyBytes_GET_SIZE(new)
                total += _lenenc_size(n) + n - (pos - self.starts[i])
        if pos != size:
            raise ProtocolError("malformed row: more cells than columns")
        out = PyBytes_FromStringAndSize(NULL, total)
        cdef unsigned char* o = <unsigned char*>PyBytes_AS_STRING(out)
        cdef Py_ssize_t copied = 0, w = 0, run
        for i in range(self.columns):
            if cells[i] is None:
                continue
            run = self.starts[i] - copied
            memcpy(o + w, p + copied, run)
            w += run
            new = results[i]
            results[i] = None
            if new is None:
                o[w] = 0xFB
                w += 1
            else:
                n = PyBytes_GET_SIZE(new)
                w += _put_lenenc(o + w, n)
                memcpy(o + w, PyBytes_AS_STRING(new), n)
                w += n
            copied = self.ends[i]
        memcpy(o + w, p + copied, size - copied)
        return out

    def rewrite_binary_row(self, bytes payload not None):
        """A binary-protocol row payload with the masked cells replaced; NULL-bitmap bits
        (offset 2) follow cells that become or stop being NULL."""
        if not self.masks:
            return payload
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(payload)
        cdef Py_ssize_t size = PyBytes_GET_SIZE(payload)
        cdef Py_ssize_t body = 1 + (self.columns + 9) // 8
        if size < body or p[0] != 0:
            raise ProtocolError("malformed binary row")
        cdef Py_ssize_t pos = body, value_start = 0, total = size, n, start
        cdef int i, layout, bit
        cdef bint null
        cdef list cells = self.cells, results = self.results
        for i in range(self.columns):
            bit = i + 2
            start = pos
            self.starts[i] = pos
            null = p[1 + (bit >> 3)] & (1 << (bit & 7))
            layout = self.layouts[i]
            if null:
                pass
            elif layout >= 0:
                value_start = pos
                pos += layout
            elif layout == _TEMPORAL:
                if pos >= size:
                    raise ProtocolError("malformed binary row: truncated")
                value_start = pos + 1
                pos = value_start + p[pos]
            else:
                pos = _lenenc_cell(p, pos, size, &value_start)
            if pos > size:
                raise ProtocolError("malformed binary row: truncated")
            self.ends[i] = pos
            if cells[i] is None:
                continue
            if null:
                new = cells[i](None)
            else:
                new = cells[i](PyBytes_FromStringAndSize(<const char*>p + value_start,
                                                         pos - value_start))
            if new is not None:
                n = PyBytes_GET_SIZE(new)
                if layout >= 0:
                    if n != layout:
                        raise ValueError(f"masked value of column {i} must be {layout} bytes")
                    total += n
                elif layout == _TEMPORAL:
                    if n > 0xFF:
                        raise ValueError(f"masked value of column {i} is not a temporal value")
                    total += 1 + n
                else:
                    total += _lenenc_size(n) + n
            total -= pos - start
            results[i] = new
        if pos != size:
            raise ProtocolError("malformed binary row: more bytes than columns")
        out = PyBytes_FromStringAndSize(NULL, total)
        cdef unsigned char* o = <unsigned char*>PyBytes_AS_STRING(out)
        memcpy(o, p, body)
        cdef Py_ssize_t copied = body, w = body, run
        for i in range(self.columns):
            if cells[i] is None:
                continue
            run = self.starts[i] - copied
            memcpy(o + w, p + copied, run)
            w += run
            copied = self.ends[i]
            new = results[i]
            results[i] = None
            bit = i + 2
            if new is None:
                o[1 + (bit >> 3)] |= 1 << (bit & 7)
                continue
            o[1 + (bit >> 3)] &= ~(1 << (bit & 7))
            n = PyBytes_GET_SIZE(new)
            layout = self.layouts[i]
            if layout == _TEMPORAL:
                o[w] = <unsigned char>n
                w += 1
            elif layout < 0:
                w += _put_lenenc(o + w, n)
            memcpy(o + w, PyBytes_AS_STRING(new), n)
            w += n
        memcpy(o + w, p + copied, size - copied)
        return out

    def rewrite_packets(self, bytes buf not None, bint binary):
        """Rewrite a chunk of complete packets: rows are masked, sequence ids kept.

        Packets starting with 0xFE or 0xFF (EOF/OK terminators, ERR) and empty packets
        pass through unchanged. Rows of 16 MiB or more, before or after masking, are
        refused: they span several packets whose count masking could change, and that
        would renumber every packet after them.
        """
        if not self.masks:
            return buf
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(buf)
        cdef Py_ssize_t size = PyBytes_GET_SIZE(buf), pos = 0, length, end, n
        cdef list out = []
        while pos < size:
            if size - pos < 4:
                raise ProtocolError("incomplete packet in a row chunk")
            length = p[pos] | (p[pos + 1] << 8) | (p[pos + 2] << 16)
            end = pos + 4 + length
            if end > size:
                raise ProtocolError("incomplete packet in a row chunk")
            if length == _MAX_PAYLOAD:
                raise ProtocolError("masking rows of 16 MiB or more is not supported")
            if length == 0 or p[pos + 4] >= 0xFE:
                out.append(buf[pos:end])
            else:
                payload = buf[pos + 4:end]
                new = self.rewrite_binary_row(payload) if binary else self.rewrite_text_row(payload)
                n = PyBytes_GET_SIZE(new)
                if n >= _MAX_PAYLOAD:
                    raise ProtocolError("a masked row would reach 16 MiB; not supported")
                out.append(bytes((n & 0xFF, (n >> 8) & 0xFF, (n >> 16) & 0xFF, p[pos + 3])))
                out.append(new)
            pos = end
        return b"".join(out)
