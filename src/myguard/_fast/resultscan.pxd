# The response grammar, declared for the compiled modules that drive it (proxycore).

cdef class ResponseScanner:
    cdef public bint deprecate_eof
    cdef public bint stream_rows
    cdef public bint stop_at_rows
    cdef public bint at_rows
    cdef public long long kind
    cdef public int state
    cdef public bint done
    cdef public bint local_infile
    cdef public unsigned long long rows
    cdef public unsigned long long result_sets
    cdef public unsigned long long affected_rows
    cdef public unsigned long long last_insert_id
    cdef public long long status
    cdef public long long known_status
    cdef public long long warnings
    cdef public long long error_code
    cdef public unsigned long long stmt_id
    cdef public unsigned long long num_params
    cdef public unsigned long long num_columns
    cdef public long long last_seq
    # Column/param definitions still to come. A count of 0 or past 2**63 never reaches
    # zero, in the twin's unbounded integers as here.
    cdef long long _remaining
    cdef bint _continuation
    cdef Py_ssize_t _skip  # body bytes of a streamed packet still to come

    cpdef start(self, long long kind, bint stream_rows=*, bint stop_at_rows=*)
    cpdef bint at_result_start(self)
    cdef Py_ssize_t _scan(self, const unsigned char* p, Py_ssize_t end) except -1
    cdef inline bint _streamable(self, const unsigned char* p, Py_ssize_t body,
                                 Py_ssize_t length, Py_ssize_t end)
    cdef inline bint _row_end(self, int first, Py_ssize_t length)
    cdef int _packet(self, const unsigned char* p, Py_ssize_t end, Py_ssize_t body,
                     Py_ssize_t length) except -1
    cdef int _first(self, const unsigned char* p, Py_ssize_t end, Py_ssize_t body,
                    Py_ssize_t length, int first) except -1
    cdef inline void _after_params(self)
    cdef int _end_of_rows(self, const unsigned char* p, Py_ssize_t end, Py_ssize_t body,
                          Py_ssize_t length) except -1
    cdef long long _terminator_status(self, const unsigned char* p, Py_ssize_t end,
                                      Py_ssize_t body, Py_ssize_t length) except? -1
    cdef inline long long _eof(self, const unsigned char* p, Py_ssize_t body,
                               Py_ssize_t length)
    cdef int _ok(self, const unsigned char* p, Py_ssize_t end, Py_ssize_t body) except -1
    cdef int _error(self, const unsigned char* p, Py_ssize_t end, Py_ssize_t body) except -1
    cdef inline void _finish(self, long long status)
