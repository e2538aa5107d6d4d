# cython: language_level=3
"""The byte path of one session after login (compiled); ``proxycore_py.py`` is the twin
and says what the core does and what it asks of the handler.

Backend bytes go from ``BackendSide.data_received`` through the compiled scanner to the
client transport with no Python frame in between; Python runs only in the handler, once
per command and once per response; when a command's verdict was taught (``Repeat``) it
runs once, when the response has ended, and for a quiet verdict's usual end not at all.
"""

import ssl

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport PyUnicode_DecodeASCII
from posix.time cimport CLOCK_MONOTONIC, CLOCK_REALTIME, clock_gettime, timespec

from myguard._fast.corecounts cimport CoreCounts
from myguard._fast.fingerprint cimport fingerprint_hash
from myguard._fast.framing cimport PacketBuffer, build_packets
from myguard._fast.recordpack cimport StatementHead
from myguard._fast.resultscan cimport ResponseScanner

NO_RESPONSE = 0
MAX_DEFERRED = 16  # see the twin
ANSWERED = -1
DETACH = -2
FORWARDED = -4
PAUSE_READING_AT = 1 << 20

cdef enum:
    _NO_RESPONSE = 0
    _ANSWERED = -1
    _DETACH = -2
    _PAUSE_READING_AT = 1 << 20
    _DETACHED = 0
    _IDLE = 1
    _RELAY = 2
    _INFILE = 3
    _CLOSED = 4
    _KIND_FETCH = 3  # resultscan.RESPONSE_FETCH
    _KIND_QUERY = 1  # resultscan.RESPONSE_QUERY
    _QUERY = 0  # corecounts.QUERY
    _STMT_EXECUTE = 1  # corecounts.STMT_EXECUTE
    _NO_BACKSLASH_ESCAPES = 0x0200  # SERVER_STATUS_NO_BACKSLASH_ESCAPES
    _COM_QUERY = 0x03
    _COM_STMT_EXECUTE = 0x17
    _MAX_DEFERRED = 16
    _CLIENT_SESSION_TRACK = 1 << 23
    _AUTOCOMMIT = 0x0002  # SERVER_STATUS_AUTOCOMMIT
    _STATE_CHANGED = 0x4000  # SERVER_SESSION_STATE_CHANGED
    _SESSION_FLAGS = 0x0001 | 0x0002 | 0x0200 | 0x2000  # ServerStatus.SESSION_FLAGS


cdef extern from "sys/socket.h" nogil:
    ssize_t send(int fd, const void *buf, size_t n, int flags)
    int MSG_DONTWAIT
    int MSG_NOSIGNAL


cdef class Sender:
    """Writes one side's bytes (see the twin): straight to the socket while the transport
    holds nothing unsent, else through the transport; never once it is closing."""

    def __init__(self, transport, layer):
        self.transport = transport
        self.layer = layer
        self.fd = socket_fd(transport) if layer is None else -1
        self.buffered = True  # written before the core took over may still be unsent

    cpdef bint write(self, data) except -1:
        """False when the transport is closing: nothing is written (see the twin)."""
        cdef Py_ssize_t size, sent
        transport = self.transport
        if transport.is_closing():
            return False
        if self.layer is not None:
            self.layer.write(data)
            return True
        if self.fd >= 0 and type(data) is bytes:
            if self.buffered and transport.get_write_buffer_size() == 0:
                self.buffered = False
            if not self.buffered:
                size = PyBytes_GET_SIZE(data)
                sent = send(self.fd, PyBytes_AS_STRING(data), size, MSG_DONTWAIT | MSG_NOSIGNAL)
                if sent == size:
                    return True
                if sent > 0:
                    data = data[sent:]
                self.buffered = True  # the rest, or an error to report, is the transport's
        transport.write(data)
        return True


def layer_error(exc):
    """Why a side is gone when its layer could not read what came: a TLS error, or a
    malformed compressed packet (the layer's ValueError says so)."""
    return f"TLS error: {exc}" if isinstance(exc, ssl.SSLError) else str(exc)


def socket_fd(transport):
    """The transport's socket descriptor, or -1 when it has none to write to directly."""
    get = getattr(transport, "get_extra_info", None)
    sock = get("socket") if get is not None else None
    try:
        return sock.fileno() if sock is not None else -1
    except (AttributeError, OSError):
        return -1


cdef inline double _clock(int which) noexcept:
    cdef timespec ts
    clock_gettime(which, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef inline bint _mentions_sql_mode(const unsigned char* p, Py_ssize_t n) noexcept:
    """Does the command hold ``sql_mode`` in any letter case (text_reading reads it)?"""
    cdef const char* word = b"sql_mode"
    cdef Py_ssize_t i, j
    cdef unsigned char c
    for i in range(n - 7):
        for j in range(8):
            c = p[i + j]
            if 65 <= c <= 90:  # A-Z
                c |= 0x20
            if c != word[j]:
                break
        else:
            return True
    return False


cdef class Repeat:
    """A verdict the handler taught the core (see the twin): commands of this shape are
    forwarded without asking the handler while what it was decided under still holds."""

    def __init__(self, decision, policy, context, fingerprint=None, str text=None,
                 prepared=None, StatementHead head=None, bint quiet=False, int autocommit=-1,
                 str names=None, bytes tracked=None):
        self.decision = decision
        self.policy = policy
        self.context = context
        self.fingerprint = fingerprint
        self.text = text
        self.prepared = prepared
        self.head = head
        self.quiet = quiet
        self.autocommit = autocommit
        self.names = names
        self.tracked = tracked


cdef class ClientSide:
    """The client socket's protocol while the core owns it."""

    cdef ProxyCore core

    def __init__(self, ProxyCore core):
        self.core = core

    def data_received(self, bytes data):
        self.core.client_data(data)

    def eof_received(self):
        self.core.client_gone("connection closed by peer")
        return False

    def connection_lost(self, exc):
        self.core.client_gone(str(exc) if exc else "connection closed by peer")

    def pause_writing(self):
        self.core.client_writable(False)

    def resume_writing(self):
        self.core.client_writable(True)


cdef class BackendSide:
    """The backend socket's protocol while the core owns it."""

    cdef ProxyCore core

    def __init__(self, ProxyCore core):
        self.core = core

    def data_received(self, bytes data):
        self.core.backend_data(data)

    def eof_received(self):
        self.core.backend_gone("connection closed by peer")
        return False

    def connection_lost(self, exc):
        self.core.backend_gone(str(exc) if exc else "connection closed by peer")

    def pause_writing(self):
        self.core.backend_writable(False)

    def resume_writing(self):
        self.core.backend_writable(True)


cdef class ProxyCore:
    """Relays one session's commands and responses between two transports."""

    def __init__(self, handler, ResponseScanner scanner, long long max_payload,
                 CoreCounts counts):
        self.handler = handler
        self.scanner = scanner
        self.counts = counts
        self.repeats = {}
        self.executes = {}
        self._session = getattr(handler, "session", None)
        self._repeat = None
        self.requests = PacketBuffer(max_payload)
        self.client_side = ClientSide(self)
        self.backend_side = BackendSide(self)
        self._state = _DETACHED
        self._pending = b""
        self._infile_seq = 0
        self._client_lost = None
        self._backend_lost = None
        self._client_blocked = False
        self._backend_blocked = False
        self._client_paused = False
        self._backend_paused = False
        self._masked = False
        self._holding = False
        self._held = b""
        self._masker = None
        self._binary = False
        self._discard = False
        self._kind = 0
        self.deferred = []
        self._settling = 0
        self._checks = {}
        self._expect = {}
        self.sent = False
        self.keep_end = False
        self._kept = None

    # -- taking over and handing back ------------------------------------------------------

    cpdef attach(self, client_stream, backend_stream):
        """Take both sockets from their packet streams; then ``serve`` or ``forward``."""
        self._client_stream = client_stream
        self._backend_stream = backend_stream
        self._repeat = None
        transport, layer, unread, blocked = client_stream.hand_over()
        self._client_transport, self._client_layer, self._client_blocked = transport, layer, blocked
        self._client_sender = Sender(transport, layer)
        self.requests.checks_sequence = client_stream.checks_sequence
        transport.set_protocol(self.client_side)
        if unread:
            self.requests.feed(unread)
        transport, layer, unread, blocked = backend_stream.hand_over()
        self._backend_transport, self._backend_layer, self._backend_blocked = transport, layer, blocked
        self._backend_sender = Sender(transport, layer)
        transport.set_protocol(self.backend_side)
        if unread:
            self._pending += unread
        self._state = _IDLE

    cpdef serve(self):
        """Take the client's buffered commands (after ``attach``)."""
        self._serve()

    cpdef forward(self, bytes payload, long long kind, bint masked):
        """Send a command the handler decided on and relay its response of ``kind``."""
        self._masked = masked
        self._holding = masked and kind != _KIND_FETCH
        self._discard = False
        if not masked:
            self._masker = None
        self._kind = kind
        self._state = _RELAY
        data = build_packets(payload, 0)[0]
        if self.deferred:
            # In the same write, so the backend applies them first (_settle drops their OKs).
            data = b"".join([build_packets(p, 0)[0] for p in self.deferred]) + data
            count = len(self.deferred)
            self._settling = count
            self.deferred = []
            if self._checks:
                self._expect = {count - i: check for i, check in self._checks.items()}
                self._checks = {}
            self.scanner.start(_KIND_QUERY, False, False)
        else:
            self.scanner.start(kind, not masked, masked)
        self._write_backend(data)
        if PyBytes_GET_SIZE(self._pending):
            self._relay(b"")

    cpdef defer(self, list payloads):
        """Send ``payloads`` in front of the next forwarded command, after those deferred
        before (see the twin)."""
        self.deferred.extend(payloads)

    cpdef list take_deferred(self):
        """What was deferred and not sent (see the twin)."""
        payloads = self.deferred
        self.deferred = []
        self._checks = {}
        return payloads

    cpdef object take_kept(self):
        """The end of the response ``keep_end`` asked for (see the twin)."""
        kept = self._kept
        self._kept = None
        return kept

    cpdef mask_rows(self, masker, bint binary):
        """Rows of the current result set go through ``masker.rewrite_packets``."""
        self._masker = masker
        self._binary = binary

    cpdef discard_rest(self):
        """The handler refused this result: drop the rest of the response."""
        self._discard = True

    cpdef detach(self):
        """Give both sockets back to their packet streams, with what they sent unread."""
        if self._state == _DETACHED:
            return
        self._state = _DETACHED
        self._resume(True)
        self._resume(False)
        unread = self._pending
        self._pending = b""
        self._backend_stream.take_back(unread, self._backend_blocked, self._backend_lost)
        self._client_stream.take_back(
            self.requests.take(), self._client_blocked, self._client_lost
        )

    cpdef close(self):
        self._state = _CLOSED
        for transport in (self._client_transport, self._backend_transport):
            if transport is not None and not transport.is_closing():
                transport.close()

    # -- writing -----------------------------------------------------------------------------

    cpdef write_client(self, data):
        if self._client_lost is None and not self._client_sender.write(data):
            self.client_gone("connection closed")

    cpdef answer(self, list payloads):
        """Send packets of myguard's own as the response to the current command."""
        cdef long long seq = 1
        for payload in payloads:
            data, seq = build_packets(payload, seq)
            self.write_client(data)

    cdef _write_backend(self, bytes data):
        self.sent = True
        self.counts.bytes_to_backend += PyBytes_GET_SIZE(data)
        if not self._backend_sender.write(data):  # closed while the session task had it
            self.backend_gone("connection closed")

    # -- the client side ---------------------------------------------------------------------

    cdef client_data(self, bytes data):
        if self._client_layer is not None:
            try:
                data = self._client_layer.unwrap(data)
            except (ssl.SSLError, ValueError) as exc:  # TLS, the compressed protocol
                self.client_gone(layer_error(exc))
                self._client_transport.close()
                return
        if PyBytes_GET_SIZE(data):
            self.requests.feed(data)
        if self._state == _IDLE:
            self._serve()
        elif self._state == _INFILE:
            self._infile()
        # Commands pipelined behind a response wait; a command itself must arrive whole.
        if (self._state == _RELAY and len(self.requests) > _PAUSE_READING_AT
                and not self._client_paused):
            self._client_paused = True
            self._client_transport.pause_reading()

    cdef _serve(self):
        cdef long long verdict
        handler = self.handler
        try:
            while self._state == _IDLE:
                got = self.requests.next_packet(0)
                if got is None:
                    if not self._backend_blocked:
                        self._resume(True)
                    return
                payload = (<tuple>got)[0]
                if self._taught(payload):
                    continue
                verdict = handler.command(payload)
                if verdict > 0:
                    self.forward(payload, verdict, False)
                elif verdict == _NO_RESPONSE:
                    self._write_backend(build_packets(payload, 0)[0])
                elif verdict == _DETACH:
                    self.detach()
        except Exception as exc:  # malformed framing; the handler ends the session
            self._state = _CLOSED
            handler.core_failed(exc)

    cdef bint _taught(self, bytes payload) except -1:
        """Forward ``payload`` on a taught verdict; False when the handler must decide."""
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(payload)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(payload), i
        cdef unsigned char c
        cdef unsigned long stmt_id
        cdef Repeat entry
        cdef double clock
        session = self._session
        if n == 0 or session is None:
            return False
        if p[0] == _COM_QUERY:
            if not self.repeats and session.guard.taught is None:
                return False
            for i in range(1, n):
                c = p[i]
                if c == 34 or c == 92 or c >= 0x80:  # '"', backslash, not ASCII
                    return False
            if _mentions_sql_mode(p, n):  # its end may change how texts read (handler)
                return False
            fingerprint = fingerprint_hash(payload[1:])
            entry = self.repeats.get(fingerprint)
            if entry is not None:
                if entry.context is not session.guard.context:
                    return False
            else:  # one another session of this identity context taught (see the twin)
                taught = session.guard.taught
                entry = taught.get(fingerprint) if taught is not None else None
            if entry is None or entry.policy is not session.ctx.policy:
                return False
            text = PyUnicode_DecodeASCII(<const char*>p + 1, n - 1, NULL)
        elif p[0] == _COM_STMT_EXECUTE:
            if n < 10 or p[5] != 0 or not self.executes:  # p[5]: cursor flags
                return False
            stmt_id = p[1] | (p[2] << 8) | (p[3] << 16) | (<unsigned long>p[4] << 24)
            entry = self.executes.get(stmt_id)
            if entry is None or session.prepared.get(stmt_id) is not entry.prepared:
                return False
            text = entry.text
            fingerprint = entry.fingerprint
        else:
            return False
        if session.ctx.draining:
            return False
        writer = session.trail.writer
        if writer is not None and not writer.healthy:
            return False
        if entry.autocommit >= 0 or entry.names is not None:
            return self._answer_setting(entry, payload, text, fingerprint)
        clock = _clock(CLOCK_MONOTONIC)
        session.busy = True
        session.last_active = clock
        session.current_statement = text
        self._repeat = entry
        self._repeat_text = text
        self._repeat_fingerprint = fingerprint
        self._repeat_started = _clock(CLOCK_REALTIME)
        self._repeat_clock = clock
        self.forward(payload, _KIND_QUERY, False)
        return True

    cdef _ended(self):
        """The response has ended: the handler hears of it, unless the command was
        forwarded on a taught verdict and its end is one the core records itself. Taught
        commands are counted here, whoever records them."""
        cdef Repeat entry = self._repeat
        cdef double seconds
        if entry is None:
            self.handler.response_ended()
            return
        self._repeat = None
        seconds = _clock(CLOCK_MONOTONIC) - self._repeat_clock
        if not self._end_taught(entry):
            self.handler.repeat_ended(
                entry, self._repeat_text, self._repeat_fingerprint, self._repeat_started
            )
        if entry.prepared is None:
            self.counts.cache_hits += 1
            self.counts.done(_QUERY, seconds)
        else:
            self.counts.done(_STMT_EXECUTE, seconds)

    cdef bint _end_taught(self, Repeat entry) except -1:
        """Record the end of a taught command (its audit record); False when the
        handler must: it changed or reports session state (an error, the server's
        NO_BACKSLASH_ESCAPES flag set or to clear, diagnostics withheld to clear), the
        proxy drains, or audit needs Python for its record (see the twin)."""
        cdef ResponseScanner scanner = self.scanner
        session = self._session
        if (not entry.quiet or scanner.error_code or scanner.status & _NO_BACKSLASH_ESCAPES
                or session.reading.no_backslash_escapes or session.ctx.draining
                or self.handler.withheld_diagnostics):
            return False
        head = self._head(entry, self._repeat_fingerprint)
        if head is False:
            return False
        self._record(head, self._repeat_text, self._repeat_fingerprint, scanner.rows,
                     scanner.affected_rows, self._repeat_started)
        session.busy = False
        return True

    cdef bint _answer_setting(self, Repeat entry, bytes payload, str text,
                              fingerprint) except -1:
        """Answer a taught SET autocommit or SET NAMES with the server's OK and defer it;
        False when the handler must (see the twin)."""
        cdef long long status = self.scanner.known_status
        cdef long long flags
        cdef double started, clock
        cdef bytearray ok
        cdef bytes tail = b""
        session = self._session
        if session.capabilities & _CLIENT_SESSION_TRACK:
            tail = entry.tracked
            if tail is None or self.handler.own_trackers:
                return False
        if (text != entry.text or status < 0 or len(self.deferred) >= _MAX_DEFERRED
                or self.handler.withheld_diagnostics):
            return False
        status &= _SESSION_FLAGS
        if entry.names is not None:
            if not session.reading.unchanged_by_names(entry.names):
                return False
        elif entry.autocommit:
            if not status & _AUTOCOMMIT:
                return False
        else:
            status &= ~_AUTOCOMMIT
        head = self._head(entry, fingerprint)
        if head is False:
            return False
        started = _clock(CLOCK_REALTIME)
        clock = _clock(CLOCK_MONOTONIC)
        if PyBytes_GET_SIZE(tail):
            self._checks[len(self.deferred)] = (entry, fingerprint, tail)
            flags = status | _STATE_CHANGED
        else:
            flags = status
        self.deferred.append(payload)
        self.scanner.known_status = status
        ok = bytearray(b"\x00\x00\x00\x00\x00\x00\x00")
        ok[3] = flags & 0xFF
        ok[4] = (flags >> 8) & 0xFF
        self.write_client(build_packets(bytes(ok) + tail, 1)[0])
        self._record(head, text, fingerprint, 0, 0, started)
        session.last_active = clock
        session.current_statement = text
        self.counts.cache_hits += 1
        self.counts.done(_QUERY, _clock(CLOCK_MONOTONIC) - clock)
        return True

    cdef object _head(self, Repeat entry, fingerprint):
        """The head for a taught command's record, None while audit is disabled, False
        when the record needs Python (see the twin)."""
        head = entry.head
        if head is None and self._session.trail.writer is not None:
            if entry.context is not None:  # the session's own, without a head: redaction
                return False
            head = self.handler.shared_head(entry, fingerprint)
            if head is None:
                return False
        return head

    cdef _record(self, StatementHead head, str text, fingerprint, unsigned long long rows,
                 unsigned long long affected, double started):
        cdef double now
        if head is None:
            return
        session = self._session
        now = _clock(CLOCK_REALTIME)
        body = head.pack(now, text, session.database, fingerprint, None, None, rows, affected,
                         None, started, now - started, None)
        trail = session.trail
        if not trail.writer.tail.offer(body):
            trail.enqueue(body)

    cdef _infile(self):
        try:
            while True:
                got = self.requests.next_packet(self._infile_seq)
                if got is None:
                    return
                payload, seq = got
                self._write_backend(build_packets(payload, self._infile_seq)[0])
                self._infile_seq = seq
                if not payload:
                    break
        except Exception as exc:
            self._state = _CLOSED
            self.handler.core_failed(exc)
            return
        self.scanner.resume_after_infile()
        self._state = _RELAY
        if PyBytes_GET_SIZE(self._pending):
            self._relay(b"")

    cdef client_gone(self, str reason):
        if self._client_lost is not None:
            return
        self._client_lost = reason
        if self._state != _DETACHED:
            self._state = _CLOSED
            self.handler.client_lost(reason)

    cdef client_writable(self, bint writable):
        self._client_blocked = not writable
        if self._state != _DETACHED:
            if writable:
                self._resume(False)
            elif not self._backend_paused:
                self._backend_paused = True
                self._backend_transport.pause_reading()

    # -- the backend side --------------------------------------------------------------------

    cdef backend_data(self, bytes data):
        if self._backend_layer is not None:
            try:
                data = self._backend_layer.unwrap(data)
            except (ssl.SSLError, ValueError) as exc:  # TLS, the compressed protocol
                self.backend_gone(layer_error(exc))
                self._backend_transport.close()
                return
        if self._state == _RELAY:
            self._relay(data)
        elif PyBytes_GET_SIZE(data):
            self._pending += data

    cdef _relay(self, bytes data):
        cdef ResponseScanner scanner = self.scanner
        cdef Py_ssize_t used, size
        cdef object run = None  # what the client gets of ``data`` (unmasked)
        cdef list runs = None  # the same, masked
        if PyBytes_GET_SIZE(self._pending):
            data = self._pending + data
            self._pending = b""
        if self._settling:
            rest = self._settle(data)
            if rest is None:
                return
            data = <bytes>rest
        size = PyBytes_GET_SIZE(data)
        try:
            if self._masked:
                runs = []
                used = self._relay_masked(data, runs)
            else:
                used = scanner._scan(<const unsigned char*>PyBytes_AS_STRING(data), size)
                if used:
                    run = data if used == size else data[:used]
        except Exception as exc:  # a response that breaks the grammar, a failed rewrite
            self._state = _CLOSED
            self.handler.core_failed(exc)
            return
        self.counts.bytes_to_client += used
        if used < size:
            self._pending = data[used:]
        if scanner.done:
            # The audit record before the end of the response (see the twin).
            self._state = _IDLE
            if self.keep_end:
                self.keep_end = False
                self._kept = None if self._masked or run is None else run
            self._ended()
            if self._masked and scanner.error_code and runs:
                # the ERR is the last packet (no negative index: wraparound is off here)
                runs[len(runs) - 1] = self.handler.masked_error(runs[len(runs) - 1])
            self._send(run, runs)
            self._serve()
            return
        self._send(run, runs)
        if scanner.local_infile:
            self._state = _INFILE
            self._infile_seq = (scanner.last_seq + 1) & 0xFF
            self._infile()

    cdef object _settle(self, bytes data):
        """Read the deferred commands' responses off ``data``: the rest once each ended in
        an OK; None while they have not, or when one ended in an error (see the twin)."""
        cdef ResponseScanner scanner = self.scanner
        cdef Py_ssize_t used
        while self._settling:
            try:
                used = scanner._scan(<const unsigned char*>PyBytes_AS_STRING(data),
                                     PyBytes_GET_SIZE(data))
            except Exception as exc:  # a response that breaks the grammar
                self._state = _CLOSED
                self.handler.core_failed(exc)
                return None
            if not scanner.done:
                self._pending = data[used:]
                return None
            if scanner.error_code:
                self._state = _CLOSED
                self.handler.settings_failed(data[:used])
                return None
            if self._expect:
                check = self._expect.pop(self._settling, None)
                if check is not None:
                    self._check_tail(check, data[4:used])
            data = data[used:]
            self._settling -= 1
            if self._settling:
                scanner.start(_KIND_QUERY, False, False)
        scanner.start(self._kind, not self._masked, self._masked)
        return data

    cdef _check_tail(self, tuple check, bytes ok):
        """The server's own OK to a setting answered with a learned tail (see the twin)."""
        cdef Repeat entry = check[0]
        tail = check[2]
        if ok[:3] != b"\x00\x00\x00" or ok[5:7] != b"\x00\x00" or ok[7:] != tail:
            entry.tracked = None
            self.handler.tracked_stale(entry, check[1], tail, ok)

    cdef _send(self, run, list runs):
        if run is not None:
            self.write_client(run)
        elif runs:
            # one write (a system call) for the runs of one received chunk
            self.write_client(runs[0] if len(runs) == 1 else b"".join(runs))

    cdef Py_ssize_t _relay_masked(self, bytes data, list out) except -1:
        """Scan ``data`` one result-set boundary at a time, adding what the client gets to
        ``out``; the bytes consumed."""
        cdef ResponseScanner scanner = self.scanner
        cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
        cdef Py_ssize_t size = PyBytes_GET_SIZE(data), pos = 0, used
        while True:
            used = scanner._scan(p + pos, size - pos)
            run = data[pos:pos + used]
            pos += used
            if self._holding:
                self._held += run
                if scanner.at_rows:
                    scanner.at_rows = False
                    self._holding = False
                    header = self._held
                    self._held = b""
                    if not self._discard:
                        out.append(self.handler.columns(header))
                elif scanner.at_result_start() or scanner.done or scanner.local_infile:
                    held = self._held  # OK/ERR packets, no metadata
                    self._held = b""
                    if not self._discard:
                        out.append(held)
            else:
                if used and not self._discard:
                    if self._masker is not None:
                        run = self._masker.rewrite_packets(run, self._binary)
                    out.append(run)
                if scanner.at_result_start() and not scanner.done:
                    self._holding = True
                    self._masker = None
            if not used or scanner.done or scanner.local_infile:
                return pos

    cdef backend_gone(self, str reason):
        cdef int state = self._state
        if self._backend_lost is not None:
            return
        self._backend_lost = reason
        if state != _DETACHED and state != _CLOSED:
            self._state = _CLOSED
            self.handler.backend_lost(reason, state != _IDLE)

    cdef backend_writable(self, bint writable):
        self._backend_blocked = not writable
        if self._state != _DETACHED:
            if writable:
                self._resume(True)
            elif not self._client_paused:
                self._client_paused = True
                self._client_transport.pause_reading()

    cdef _resume(self, bint client):
        if client and self._client_paused:
            self._client_paused = False
            self._client_transport.resume_reading()
        elif not client and self._backend_paused:
            self._backend_paused = False
            self._backend_transport.resume_reading()
