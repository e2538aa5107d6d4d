# cython: language_level=3
"""Row rewriting for masked result sets (compiled); see ``rowmask_py.py`` for the twin.

Each row is scanned once to find cell boundaries, the masked cells only are rewritten,
and the new row is written straight into the output: untouched cells are memcpy'd as
raw runs. Cells given as ``CellOp`` (constants, partial, email) are computed here in C
without a Python call (``hash`` with OpenSSL's HMAC); other cell functions are called.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.object cimport PyObject
from cpython.ref cimport Py_XDECREF
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

from myguard._fast.openssl cimport (
    HmacSha256,
    free_hmac_sha256,
    hmac_sha256,
    new_hmac_sha256,
)

from myguard._fast import cell_ops
from myguard._fast.cell_ops import CellOp
from myguard.protocol.column_types import BINARY_FIXED_WIDTH, BINARY_TEMPORAL
from myguard.protocol.errors import ProtocolError

cdef enum:
    _LENENC = -1  # binary cell layouts besides fixed widths (BINARY_FIXED_WIDTH)
    _TEMPORAL = -2
    _MAX_PAYLOAD = 0xFFFFFF
    # how a column's cells are rewritten: cell_ops operations, plus these two
    _UNTOUCHED = 0
    _CALL = -1
    _CONSTANT = 1
    _REPLACE = 2
    _PARTIAL = 3
    _EMAIL = 4
    _HASH = 5
    _HASH_BYTES = 8  # cell_ops.HASH_HEX_DIGITS / 2
    _TEXT_UTF8 = 1
    _TEXT_BYTES = 2
    _TEXT_CP1252 = 3
    _TEXT_ASCII = 4

if (cell_ops.CONSTANT, cell_ops.REPLACE, cell_ops.PARTIAL, cell_ops.EMAIL, cell_ops.HASH,
        cell_ops.HASH_HEX_DIGITS) != (1, 2, 3, 4, 5, 16) or (
    cell_ops.TEXT_UTF8, cell_ops.TEXT_BYTES, cell_ops.TEXT_CP1252, cell_ops.TEXT_ASCII
) != (1, 2, 3, 4):
    raise ImportError("myguard._fast.cell_ops and rowmask.pyx disagree: rebuild the extension")

cdef extern from "Python.h":
    # A bytes object the caller owns while it is written and resized in place.
    PyObject* _new_bytes "PyBytes_FromStringAndSize"(const char* s, Py_ssize_t n)
    char* _bytes_data "PyBytes_AS_STRING"(PyObject* b)
    int _resize_bytes "_PyBytes_Resize"(PyObject** b, Py_ssize_t n)

cdef bytes _REDACTED = b"****"
cdef const char* _HEX = b"0123456789abcdef"


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


cdef Py_ssize_t _text_chars(const unsigned char* s, Py_ssize_t n, int mode):
    """The characters in s, or -1 when s is not valid text in ``mode`` (as Python's
    strict decoder sees it: no overlong forms, surrogates or code points past U+10FFFF)."""
    cdef Py_ssize_t i = 0, chars = 0
    cdef unsigned char c, c1
    if mode == _TEXT_BYTES:
        return n
    if mode == _TEXT_ASCII or mode == _TEXT_CP1252:
        for i in range(n):
            c = s[i]
            if mode == _TEXT_ASCII and c >= 0x80:
                return -1
            if c == 0x81 or c == 0x8D or c == 0x8F or c == 0x90 or c == 0x9D:
                return -1
        return n
    while i < n:
        c = s[i]
        if c < 0x80:
            i += 1
        elif c < 0xC2:
            return -1
        elif c < 0xE0:
            if i + 1 >= n or s[i + 1] & 0xC0 != 0x80:
                return -1
            i += 2
        elif c < 0xF0:
            if i + 2 >= n:
                return -1
            c1 = s[i + 1]
            if c1 & 0xC0 != 0x80 or s[i + 2] & 0xC0 != 0x80:
                return -1
            if (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 >= 0xA0):
                return -1
            i += 3
        elif c < 0xF5:
            if i + 3 >= n:
                return -1
            c1 = s[i + 1]
            if c1 & 0xC0 != 0x80 or s[i + 2] & 0xC0 != 0x80 or s[i + 3] & 0xC0 != 0x80:
                return -1
            if (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 >= 0x90):
                return -1
            i += 4
        else:
            return -1
        chars += 1
    return chars


cdef Py_ssize_t _stars(const unsigned char* s, Py_ssize_t n, int op, Py_ssize_t keep,
                       int mode, Py_ssize_t* suffix) noexcept:
    """strategies' partial(keep) and email on valid text: the masked value is this many
    asterisks followed by s[suffix:]; -1 when s is not valid text in ``mode``, -2 for an
    email without "@" (redacted whole)."""
    cdef Py_ssize_t chars = _text_chars(s, n, mode), tail = n, kept = 0
    if chars < 0:
        return -1
    if op == _EMAIL:
        tail = n - 1
        while tail >= 0 and s[tail] != ord("@"):
            tail -= 1
        if tail < 0:
            return -2
        suffix[0] = tail
        return 4  # len(_REDACTED)
    if keep and chars > keep:
        if mode == _TEXT_UTF8:
            while kept < keep:
                tail -= 1
                if s[tail] & 0xC0 != 0x80:
                    kept += 1
        else:
            tail = n - keep
            kept = keep
    suffix[0] = tail
    return chars - kept


cdef inline Py_ssize_t _put_starred(unsigned char* o, const unsigned char* p, Py_ssize_t stars,
                                    Py_ssize_t suffix, Py_ssize_t end) noexcept:
    """At o, the length-encoded cell of ``stars`` asterisks and p[suffix:end]; its size."""
    cdef Py_ssize_t n = stars + end - suffix
    cdef Py_ssize_t w = _put_lenenc(o, n)
    memset(o + w, ord("*"), stars)
    memcpy(o + w + stars, p + suffix, end - suffix)
    return w + n


cdef object _hash_hex(HmacSha256* mac, const unsigned char* s, Py_ssize_t n):
    """strategies' hash: the first hex digits of HMAC-SHA256 of s (lowercase)."""
    cdef unsigned char digest[32]
    cdef int i
    if not hmac_sha256(mac, s, n, digest):
        raise RuntimeError("OpenSSL HMAC failed")
    out = PyBytes_FromStringAndSize(NULL, 2 * _HASH_BYTES)
    cdef char* o = PyBytes_AS_STRING(out)
    for i in range(_HASH_BYTES):
        o[2 * i] = _HEX[digest[i] >> 4]
        o[2 * i + 1] = _HEX[digest[i] & 15]
    return out


cdef class RowMasker:
    """Rewrites the rows of one result set, masking the cells that have a cell function."""

    cdef readonly int columns
    cdef readonly bint masks
    cdef list cells
    cdef list args  # CellOp arguments
    cdef list results  # the masked cells of the row in hand
    cdef int* layouts
    cdef int* ops
    cdef int* texts
    cdef Py_ssize_t* keeps
    cdef HmacSha256** macs  # HASH columns' keyed HMACs
    cdef Py_ssize_t* starts  # where each cell begins
    cdef Py_ssize_t* ends  # where each cell ends
    # partial/email cells of the row in hand written without a bytes object: asterisks
    # (-1: the cell's value is in results) and where the kept suffix starts
    cdef Py_ssize_t* stars
    cdef Py_ssize_t* suffixes

    def __cinit__(self, types, cells):
        n = max(len(types), 1)
        self.layouts = <int*>malloc(n * sizeof(int))
        self.ops = <int*>malloc(n * sizeof(int))
        self.texts = <int*>malloc(n * sizeof(int))
        self.keeps = <Py_ssize_t*>malloc(n * sizeof(Py_ssize_t))
        self.macs = <HmacSha256**>calloc(n, sizeof(HmacSha256*))
        self.starts = <Py_ssize_t*>malloc(n * sizeof(Py_ssize_t))
        self.ends = <Py_ssize_t*>malloc(n * sizeof(Py_ssize_t))
        self.stars = <Py_ssize_t*>malloc(n * sizeof(Py_ssize_t))
        self.suffixes = <Py_ssize_t*>malloc(n * sizeof(Py_ssize_t))
        if (self.layouts == NULL or self.ops == NULL or self.texts == NULL
                or self.keeps == NULL or self.macs == NULL or self.starts == NULL
                or self.ends == NULL or self.stars == NULL or self.suffixes == NULL):
            raise MemoryError()

    def __dealloc__(self):
        if self.macs != NULL:
            for i in range(max(self.columns, 1)):
                free_hmac_sha256(self.macs[i])
            free(self.macs)
        free(self.layouts)
        free(self.ops)
        free(self.texts)
        free(self.keeps)
        free(self.starts)
        free(self.ends)
        free(self.stars)
        free(self.suffixes)

    def __init__(self, types, cells):
        if len(types) != len(cells):
            raise ValueError("one cell function (or None) per column is needed")
        self.columns = len(types)
        self.cells = list(cells)
        self.args = [None] * self.columns
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
            self._set_op(i, self.cells[i])

    cdef int _set_op(self, int i, object cell) except -1:
        cdef bytes key
        self.texts[i] = 0
        self.keeps[i] = 0
        if cell is None:
            self.ops[i] = _UNTOUCHED
        elif not isinstance(cell, CellOp):
            self.ops[i] = _CALL
        elif cell.op in (_CONSTANT, _REPLACE):
            self.ops[i] = cell.op
            self.args[i] = cell.arg
        elif cell.op == _HASH and _TEXT_UTF8 <= cell.text <= _TEXT_ASCII:
            key = cell.arg
            self.macs[i] = new_hmac_sha256(<const unsigned char*>PyBytes_AS_STRING(key),
                                           PyBytes_GET_SIZE(key))
            if self.macs[i] == NULL:
                raise RuntimeError("OpenSSL could not set up HMAC-SHA256 with this key")
            self.ops[i] = _HASH
        elif cell.op in (_PARTIAL, _EMAIL) and _TEXT_UTF8 <= cell.text <= _TEXT_ASCII:
            self.ops[i] = cell.op
            self.texts[i] = cell.text
            self.keeps[i] = cell.arg or 0
        else:
            self.ops[i] = _CALL
        return 0

    cdef object _mask(self, int i, const unsigned char* p, Py_ssize_t start, Py_ssize_t end,
                      bint null):
        """The masked value of cell i (None: NULL)."""
        cdef int op = self.ops[i]
        cdef Py_ssize_t stars, suffix
        if op == _CONSTANT:
            return self.args[i]
        if null:
            return self.cells[i](None) if op == _CALL else None
        if op == _REPLACE:
            return self.args[i]
        if op == _HASH:
            return _hash_hex(self.macs[i], p + start, end - start)
        if op == _PARTIAL or op == _EMAIL:
            stars = _stars(p + start, end - start, op, self.keeps[i], self.texts[i], &suffix)
            if stars == -2:
                return _REDACTED
            if stars >= 0:
                new = PyBytes_FromStringAndSize(NULL, stars + end - start - suffix)
                memset(PyBytes_AS_STRING(new), ord("*"), stars)
                memcpy(PyBytes_AS_STRING(new) + stars, p + start + suffix, end - start - suffix)
                return new
        return self.cells[i](PyBytes_FromStringAndSize(<const char*>p + start, end - start))

    cdef inline Py_ssize_t _starred(self, int i, const unsigned char* p, Py_ssize_t start,
                                    Py_ssize_t end) noexcept:
        """The size of cell i's partial/email value when it is written without a bytes
        object (noted in stars and suffixes), else -1 (``_mask`` computes the value)."""
        cdef Py_ssize_t stars, suffix
        cdef int op = self.ops[i]
        if op != _PARTIAL and op != _EMAIL:
            return -1
        stars = _stars(p + start, end - start, op, self.keeps[i], self.texts[i], &suffix)
        if stars < 0:
            return -1
        self.stars[i] = stars
        self.suffixes[i] = start + suffix
        return stars + end - start - suffix

    cdef Py_ssize_t _scan_text(self, const unsigned char* p, Py_ssize_t size) except -1:
        """Find the cells of a text row and mask into self.results; the new row's size."""
        cdef Py_ssize_t pos = 0, value_start = 0, total = size, n
        cdef int i
        cdef bint null
        cdef list results = self.results
        for i in range(self.columns):
            self.starts[i] = pos
            null = pos < size and p[pos] == 0xFB
            if null:
                pos += 1
            else:
                pos = _lenenc_cell(p, pos, size, &value_start)
            self.ends[i] = pos
            if self.ops[i] == _UNTOUCHED:
                continue
            n = -1 if null else self._starred(i, p, value_start, pos)
            if n >= 0:
                total += _lenenc_size(n) + n - (pos - self.starts[i])
                continue
            self.stars[i] = -1
            new = self._mask(i, p, value_start, pos, null)
            results[i] = new
            if new is None:
                total += 1 - (pos - self.starts[i])
            else:
                n = PyBytes_GET_SIZE(new)
                total += _lenenc_size(n) + n - (pos - self.starts[i])
        if pos != size:
            raise ProtocolError("malformed row: more cells than columns")
        return total

    cdef void _write_text(self, unsigned char* o, const unsigned char* p, Py_ssize_t size):
        """Write the row found by _scan_text, with its masked cells, at o."""
        cdef Py_ssize_t copied = 0, w = 0, run, n
        cdef int i
        cdef list results = self.results
        for i in range(self.columns):
            if self.ops[i] == _UNTOUCHED:
                continue
            run = self.starts[i] - copied
            memcpy(o + w, p + copied, run)
            w += run
            copied = self.ends[i]
            if self.stars[i] >= 0:
                w += _put_starred(o + w, p, self.stars[i], self.suffixes[i], copied)
                continue
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
        memcpy(o + w, p + copied, size - copied)

    cdef Py_ssize_t _scan_binary(self, const unsigned char* p, Py_ssize_t size) except -1:
        """Find the cells of a binary row and mask into self.results; the new row's size."""
        cdef Py_ssize_t body = 1 + (self.columns + 9) // 8
        if size < body or p[0] != 0:
            raise ProtocolError("malformed binary row")
        cdef Py_ssize_t pos = body, value_start = 0, total = size, n, start
        cdef int i, layout, bit
        cdef bint null
        cdef list results = self.results
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
            if self.ops[i] == _UNTOUCHED:
                continue
            n = -1 if null or layout != _LENENC else self._starred(i, p, value_start, pos)
            if n >= 0:
                total += _lenenc_size(n) + n - (pos - start)
                continue
            self.stars[i] = -1
            new = self._mask(i, p, value_start, pos, null)
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
        return total

    cdef void _write_binary(self, unsigned char* o, const unsigned char* p, Py_ssize_t size):
        """Write the row found by _scan_binary, with its masked cells and NULL bits, at o."""
        cdef Py_ssize_t body = 1 + (self.columns + 9) // 8
        memcpy(o, p, body)
        cdef Py_ssize_t copied = body, w = body, run, n
        cdef int i, layout, bit
        cdef list results = self.results
        for i in range(self.columns):
            if self.ops[i] == _UNTOUCHED:
                continue
            run = self.starts[i] - copied
            memcpy(o + w, p + copied, run)
            w += run
            copied = self.ends[i]
            if self.stars[i] >= 0:  # a non-NULL cell that stays one
                w += _put_starred(o + w, p, self.stars[i], self.suffixes[i], copied)
                continue
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

    cdef inline Py_ssize_t _scan(self, const unsigned char* p, Py_ssize_t size,
                                 bint binary) except -1:
        return self._scan_binary(p, size) if binary else self._scan_text(p, size)

    cdef inline void _write(self, unsigned char* o, const unsigned char* p, Py_ssize_t size,
                            bint binary):
        if binary:
            self._write_binary(o, p, size)
        else:
            self._write_text(o, p, size)

    cdef object _rewrite_row(self, bytes payload, bint binary):
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(payload)
        cdef Py_ssize_t size = PyBytes_GET_SIZE(payload)
        out = PyBytes_FromStringAndSize(NULL, self._scan(p, size, binary))
        self._write(<unsigned char*>PyBytes_AS_STRING(out), p, size, binary)
        return out

    def rewrite_text_row(self, bytes payload not None):
        """A text-protocol row payload with the masked cells replaced."""
        return self._rewrite_row(payload, False) if self.masks else payload

    def rewrite_binary_row(self, bytes payload not None):
        """A binary-protocol row payload with the masked cells replaced; NULL-bitmap bits
        (offset 2) follow cells that become or stop being NULL."""
        return self._rewrite_row(payload, True) if self.masks else payload

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
        cdef Py_ssize_t size = PyBytes_GET_SIZE(buf), pos = 0, length, end, n, w = 0
        cdef Py_ssize_t capacity = size + (size >> 2) + 64
        # Written in place into the bytes object returned, shrunk to size at the end.
        cdef PyObject* out = _new_bytes(NULL, capacity)
        cdef unsigned char* o
        cdef bint row
        if out == NULL:
            raise MemoryError()
        o = <unsigned char*>_bytes_data(out)
        try:
            while pos < size:
                if size - pos < 4:
                    raise ProtocolError("incomplete packet in a row chunk")
                length = p[pos] | (p[pos + 1] << 8) | (p[pos + 2] << 16)
                end = pos + 4 + length
                if end > size:
                    raise ProtocolError("incomplete packet in a row chunk")
                if length == _MAX_PAYLOAD:
                    raise ProtocolError("masking rows of 16 MiB or more is not supported")
                row = length != 0 and p[pos + 4] < 0xFE  # not a terminator or ERR
                n = 4 + self._scan(p + pos + 4, length, binary) if row else end - pos
                if n - 4 >= _MAX_PAYLOAD:
                    raise ProtocolError("a masked row would reach 16 MiB; not supported")
                if w + n > capacity:
                    capacity = 2 * (w + n)
                    if _resize_bytes(&out, capacity) < 0:  # out is NULL, freed
                        raise MemoryError()
                    o = <unsigned char*>_bytes_data(out)
                if row:
                    o[w] = (n - 4) & 0xFF
                    o[w + 1] = ((n - 4) >> 8) & 0xFF
                    o[w + 2] = ((n - 4) >> 16) & 0xFF
                    o[w + 3] = p[pos + 3]
                    self._write(o + w + 4, p + pos + 4, length, binary)
                else:
                    memcpy(o + w, p + pos, n)
                w += n
                pos = end
            if _resize_bytes(&out, w) < 0:
                raise MemoryError()
            return <object>out
        finally:
            Py_XDECREF(out)
