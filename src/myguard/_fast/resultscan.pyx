# cython: language_level=3
"""Response scanning (compiled); see ``resultscan_py.py`` for the twin and the grammar.

The scan loop reads packet headers straight from the caller's buffer and counts rows
without creating a Python object per packet; only the few packets that steer the protocol
(OK, ERR, EOF, column counts, PREPARE_OK) are decoded. Reads of those packets follow the
twin exactly, including its IndexError when a malformed packet points past the buffer.
"""

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer

from myguard.protocol.errors import ProtocolError

RESPONSE_QUERY = 1
RESPONSE_EXECUTE = 2
RESPONSE_FETCH = 3
RESPONSE_PREPARE = 4
RESPONSE_FIELD_LIST = 5
RESPONSE_SIMPLE = 6

cdef enum:
    _FIRST = 0
    _COLUMNS = 1
    _COLUMNS_EOF = 2
    _ROWS = 3
    _PARAMS = 4
    _PARAMS_EOF = 5
    _PREP_COLUMNS = 6
    _PREP_COLUMNS_EOF = 7
    _DONE = 8
    _MORE_RESULTS = 0x0008
    _CURSOR_EXISTS = 0x0040
    _MAX_FRAGMENT = 0xFFFFFF
    _KIND_FETCH = 3
    _KIND_EXECUTE = 2
    _KIND_PREPARE = 4
    _KIND_FIELD_LIST = 5
    _KIND_SIMPLE = 6


cdef inline int _at(const unsigned char* p, Py_ssize_t end, Py_ssize_t i) except -1:
    # Decoded packets may claim more bytes than they have, as the twin indexes the buffer.
    if i >= end:
        raise IndexError("index out of range")
    return p[i]


cdef Py_ssize_t _lenenc(const unsigned char* p, Py_ssize_t end, Py_ssize_t pos,
                        unsigned long long* value) except -1:
    """Sets value to the length-encoded integer at pos; returns the position after it."""
    cdef int first = _at(p, end, pos)
    cdef Py_ssize_t i
    if first < 0xFB:
        value[0] = first
        return pos + 1
    if first == 0xFC:
        value[0] = _at(p, end, pos + 1) | (_at(p, end, pos + 2) << 8)
        return pos + 3
    if first == 0xFD:
        value[0] = (_at(p, end, pos + 1) | (_at(p, end, pos + 2) << 8)
                    | (<unsigned long long>_at(p, end, pos + 3) << 16))
        return pos + 4
    # Eight bytes, or as many as the buffer has (the twin converts a clipped slice).
    value[0] = 0
    i = min(pos + 9, end) - 1
    while i > pos:
        value[0] = (value[0] << 8) | p[i]
        i -= 1
    return pos + 9


cdef inline int _eof_status(const unsigned char* p, Py_ssize_t body, Py_ssize_t length):
    if length >= 5:
        return p[body + 3] | (p[body + 4] << 8)
    return 0


cdef class ResponseScanner:
    """Tracks one response across the chunks that carry it."""

    def __init__(self, deprecate_eof):
        self.deprecate_eof = deprecate_eof
        self.known_status = -1
        self.start(RESPONSE_SIMPLE)

    cpdef start(self, long long kind, bint stream_rows=False, bint stop_at_rows=False):
        """Begin scanning the response to a command of ``kind`` (see the twin)."""
        self.kind = kind
        self.stream_rows = stream_rows
        self.stop_at_rows = stop_at_rows
        self.at_rows = False
        if kind == _KIND_FETCH:
            self.state = _ROWS
        elif kind == _KIND_FIELD_LIST:
            self.state = _COLUMNS
        else:
            self.state = _FIRST
        self.done = False
        self.rows = 0
        self.result_sets = 0
        self.affected_rows = 0
        self.last_insert_id = 0
        self.status = 0
        self.warnings = 0
        self.error_code = 0
        self.local_infile = False
        self.stmt_id = 0
        self.num_params = 0
        self.num_columns = 0
        self.last_seq = 0
        self._remaining = -1
        self._continuation = False
        self._skip = 0

    cpdef bint at_result_start(self):
        """Between two results of a response: the next packet starts a result (see the twin)."""
        return self.state == _FIRST

    def resume_after_infile(self):
        """After the LOCAL INFILE exchange the server answers with OK/ERR as a new first packet."""
        self.local_infile = False
        self.done = False
        self.state = _FIRST

    def scan(self, buf):
        """Consume the packets at the start of ``buf`` that belong to this response.

        Returns how many bytes were consumed; stops at the end of the response (``done``),
        at a LOCAL INFILE request (``local_infile``), or at an incomplete packet, which
        with ``stream_rows`` is consumed as far as it goes when it is a row or a
        continuation fragment.
        """
        cdef Py_buffer view
        PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
        try:
            return self._scan(<const unsigned char*>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    cdef Py_ssize_t _scan(self, const unsigned char* p, Py_ssize_t end) except -1:
        cdef Py_ssize_t pos = min(self._skip, end), body, length
        cdef int first
        if pos:
            self._skip -= pos
            if self._skip:
                return pos
        while not self.done and not self.local_infile:
            if end - pos < 4:
                break
            length = p[pos] | (p[pos + 1] << 8) | (p[pos + 2] << 16)
            body = pos + 4
            if end - body < length:
                if self.stream_rows and self._streamable(p, body, length, end):
                    self.last_seq = p[pos + 3]
                    if not self._continuation:
                        self.rows += 1
                    self._continuation = length == _MAX_FRAGMENT
                    self._skip = length - (end - body)
                    pos = end
                break
            self.last_seq = p[pos + 3]
            pos = body + length
            if self._continuation:
                # A fragment of a 16 MiB+ packet: not a packet start, never interpreted.
                self._continuation = length == _MAX_FRAGMENT
                continue
            self._continuation = length == _MAX_FRAGMENT
            if self.state == _ROWS:
                # The hot path, inlined: most packets of a response are rows.
                first = p[body] if length else -1
                if not self._row_end(first, length):
                    self.rows += 1
                elif first == 0xFF:
                    self._error(p, end, body)
                else:
                    self._end_of_rows(p, end, body, length)
                    if self.stop_at_rows and self.state == _FIRST:
                        break
            else:
                self._packet(p, end, body, length)
                if self.stop_at_rows and (self.at_rows or self.state == _FIRST):
                    break
        return pos

    cdef inline bint _streamable(self, const unsigned char* p, Py_ssize_t body,
                                 Py_ssize_t length, Py_ssize_t end):
        if self._continuation:
            return True
        if self.state != _ROWS or body == end:
            return False
        return not self._row_end(p[body], length)

    cdef inline bint _row_end(self, int first, Py_ssize_t length):
        if first == 0xFF:
            return True
        return first == 0xFE and length < _MAX_FRAGMENT and (length < 9 or self.deprecate_eof)

    cdef int _packet(self, const unsigned char* p, Py_ssize_t end, Py_ssize_t body,
                     Py_ssize_t length) except -1:
        cdef int first = p[body] if length else -1
        cdef int state = self.state
        cdef long long status
        if first == 0xFF and state != _DONE:
            self._error(p, end, body)
            return 0
        if state == _FIRST:
            self._first(p, end, body, length, first)
        elif state == _COLUMNS:
            if self.kind == _KIND_FIELD_LIST:
                # Column definitions start with the catalog ("def"), never with 0xFE.
                if first == 0xFE:
                    status = self._terminator_status(p, end, body, length)
                    self._finish(status)
                return 0
            self._remaining -= 1
            if self._remaining == 0:
                if self.deprecate_eof:
                    self.state = _ROWS
                    self.at_rows = self.stop_at_rows
                else:
                    self.state = _COLUMNS_EOF
        elif state == _COLUMNS_EOF:
            status = self._eof(p, body, length)
            self.at_rows = self.stop_at_rows
            if (self.kind == _KIND_EXECUTE and status & _CURSOR_EXISTS
                    and not status & _MORE_RESULTS):
                self._finish(status)  # a cursor opened (see the twin)
            else:
                self.state = _ROWS
        elif state == _PARAMS:
            self._remaining -= 1
            if self._remaining == 0:
                if self.deprecate_eof:
                    self._after_params()
                else:
                    self.state = _PARAMS_EOF
        elif state == _PARAMS_EOF:
            self._after_params()
        elif state == _PREP_COLUMNS:
            self._remaining -= 1
            if self._remaining == 0:
                if self.deprecate_eof:
                    self._finish(self.status)
                else:
                    self.state = _PREP_COLUMNS_EOF
        elif state == _PREP_COLUMNS_EOF:
            self._finish(self.status)
        return 0

    cdef int _first(self, const unsigned char* p, Py_ssize_t end, Py_ssize_t body,
                    Py_ssize_t length, int first) except -1:
        cdef long long kind = self.kind
        cdef unsigned long long count
        if kind == _KIND_SIMPLE:
            if first == 0x00 and length >= 7:
                self._ok(p, end, body)
            self._finish(self.status)
            return 0
        if kind == _KIND_PREPARE:
            if first != 0x00 or length < 12:
                raise ProtocolError("malformed COM_STMT_PREPARE response from backend")
            self.stmt_id = (p[body + 1] | (p[body + 2] << 8) | (p[body + 3] << 16)
                            | (<unsigned long long>p[body + 4] << 24))
            self.num_columns = p[body + 5] | (p[body + 6] << 8)
            self.num_params = p[body + 7] | (p[body + 8] << 8)
            self.warnings = p[body + 10] | (p[body + 11] << 8)
            if self.num_params:
                self.state = _PARAMS
                self._remaining = self.num_params
            else:
                self._after_params()
            return 0
        if first == 0x00:
            self._ok(p, end, body)
            self.result_sets += 1
            if not self.status & _MORE_RESULTS:
                self._finish(self.status)
            return 0
        if first == 0xFB:
            self.local_infile = True
            return 0
        # An empty packet has no count byte: like the twin, read whatever follows it.
        _lenenc(p, end, body, &count)
        self.result_sets += 1
        self.num_columns = count
        self._remaining = <long long>count
        self.state = _COLUMNS
        return 0

    cdef inline void _after_params(self):
        if self.num_columns:
            self.state = _PREP_COLUMNS
            self._remaining = <long long>self.num_columns
        else:
            self._finish(self.status)

    cdef int _end_of_rows(self, const unsigned char* p, Py_ssize_t end, Py_ssize_t body,
                          Py_ssize_t length) except -1:
        cdef long long status = self._terminator_status(p, end, body, length)
        if status & _MORE_RESULTS and self.kind != _KIND_FETCH:
            self.state = _FIRST
            self.status = status
        else:
            self._finish(status)
        return 0

    cdef long long _terminator_status(self, const unsigned char* p, Py_ssize_t end,
                                      Py_ssize_t body, Py_ssize_t length) except? -1:
        if length < 9 and not self.deprecate_eof:
            return self._eof(p, body, length)
        if self.deprecate_eof and length >= 7:
            self._ok(p, end, body)
            return self.status
        return self._eof(p, body, length)

    cdef inline long long _eof(self, const unsigned char* p, Py_ssize_t body,
                               Py_ssize_t length):
        self.known_status = _eof_status(p, body, length)
        return self.known_status

    cdef int _ok(self, const unsigned char* p, Py_ssize_t end, Py_ssize_t body) except -1:
        cdef unsigned long long affected, insert_id
        cdef Py_ssize_t pos = _lenenc(p, end, body + 1, &affected)
        pos = _lenenc(p, end, pos, &insert_id)
        self.affected_rows = affected
        self.last_insert_id = insert_id
        self.status = _at(p, end, pos) | (_at(p, end, pos + 1) << 8)
        self.known_status = self.status
        self.warnings = _at(p, end, pos + 2) | (_at(p, end, pos + 3) << 8)
        return 0

    cdef int _error(self, const unsigned char* p, Py_ssize_t end, Py_ssize_t body) except -1:
        self.error_code = _at(p, end, body + 1) | (_at(p, end, body + 2) << 8)
        self._finish(0)
        return 0

    cdef inline void _finish(self, long long status):
        self.status = status
        self.state = _DONE
        self.done = True
