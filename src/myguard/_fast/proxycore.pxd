# The byte path of one session after login, declared for compiled callers.

from myguard._fast.corecounts cimport CoreCounts
from myguard._fast.framing cimport PacketBuffer
from myguard._fast.recordpack cimport StatementHead
from myguard._fast.resultscan cimport ResponseScanner


cdef class Repeat:
    cdef readonly object decision, policy, context, prepared, fingerprint
    cdef readonly str text, names
    cdef readonly StatementHead head
    cdef readonly bint quiet
    cdef readonly int autocommit
    cdef public bytes tracked


cdef class Sender:
    cdef object transport, layer
    cdef readonly int fd
    cdef bint buffered

    cpdef bint write(self, data) except -1


cdef class ProxyCore:
    cdef readonly object handler
    cdef readonly dict repeats
    cdef readonly dict executes
    cdef object _session
    cdef Repeat _repeat
    cdef str _repeat_text
    cdef object _repeat_fingerprint
    cdef double _repeat_started, _repeat_clock
    cdef readonly ResponseScanner scanner
    cdef readonly PacketBuffer requests
    cdef readonly object client_side
    cdef readonly object backend_side
    cdef readonly CoreCounts counts
    cdef int _state
    cdef object _client_transport, _client_layer, _backend_transport, _backend_layer
    cdef object _client_stream, _backend_stream
    cdef Sender _client_sender, _backend_sender
    cdef bytes _pending
    cdef int _infile_seq
    cdef object _client_lost, _backend_lost
    cdef bint _client_blocked, _backend_blocked, _client_paused, _backend_paused
    cdef bint _masked, _holding, _binary, _discard
    cdef bytes _held
    cdef object _masker
    cdef long long _kind
    cdef readonly list deferred
    cdef int _settling
    cdef dict _checks, _expect
    cdef readonly bint sent
    cdef public bint keep_end
    cdef bytes _kept

    cpdef attach(self, client_stream, backend_stream)
    cpdef serve(self)
    cpdef forward(self, bytes payload, long long kind, bint masked)
    cpdef mask_rows(self, masker, bint binary)
    cpdef discard_rest(self)
    cpdef defer(self, list payloads)
    cpdef list take_deferred(self)
    cpdef object take_kept(self)
    cpdef detach(self)
    cpdef close(self)
    cpdef write_client(self, data)
    cpdef answer(self, list payloads)
    cdef _write_backend(self, bytes data)
    cdef client_data(self, bytes data)
    cdef _serve(self)
    cdef bint _taught(self, bytes payload) except -1
    cdef _ended(self)
    cdef bint _end_taught(self, Repeat entry) except -1
    cdef bint _answer_setting(self, Repeat entry, bytes payload, str text, fingerprint) except -1
    cdef object _head(self, Repeat entry, fingerprint)
    cdef _record(self, StatementHead head, str text, fingerprint, unsigned long long rows,
                 unsigned long long affected, double started)
    cdef _infile(self)
    cdef client_gone(self, str reason)
    cdef client_writable(self, bint writable)
    cdef backend_data(self, bytes data)
    cdef _relay(self, bytes data)
    cdef object _settle(self, bytes data)
    cdef _check_tail(self, tuple check, bytes ok)
    cdef _send(self, run, list runs)
    cdef Py_ssize_t _relay_masked(self, bytes data, list out) except -1
    cdef backend_gone(self, str reason)
    cdef backend_writable(self, bint writable)
    cdef _resume(self, bint client)
