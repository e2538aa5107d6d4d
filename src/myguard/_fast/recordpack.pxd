# Statement record packing, declared for the proxy core (which packs the records of
# statements it forwards on taught verdicts).

cdef class StatementHead:
    cdef readonly tuple keys
    cdef readonly object code
    cdef readonly bytes data
    cdef readonly Py_ssize_t count
    cdef readonly Py_ssize_t max_text

    cpdef bytes pack(self, double at, str text, database, fingerprint, masked, approval_id,
                     rows, affected, error_code, started, duration, intent_id)
