"""The byte path of one session after login; pure-Python twin of ``proxycore.pyx``.

The core is the asyncio protocol of both sockets. It frames the client's commands and asks
the session's handler about each one at the statement boundary; the handler answers with
a response kind to forward, or says it answered, needs I/O first (the core then hands both
sockets back to their packet streams until ``attach``), or ends the session. A forwarded
command's response is scanned by the one response grammar (``resultscan``) as it arrives
and written to the client in the runs it came in; the handler hears when it ended. Neither
side wakes a task on this path.

A response forwarded with ``masked`` goes through the handler instead: each result set's
metadata is held back until complete and replaced by what ``handler.columns(header)``
returns; the handler then sets the row masker (``mask_rows``), or refuses the result
(``discard_rest``: the rest of the response is read and dropped). Rows never pass before
the handler has seen their result set's metadata.

A verdict the handler teaches the core (a ``Repeat`` in ``repeats``, by fingerprint, for
COM_QUERY, or in ``executes``, by statement id, for COM_STMT_EXECUTE) lets the core forward
a command without asking: a query whose fingerprint is taught, whose text has no double
quote, backslash or non-ASCII byte (so the session's sql_mode and character set cannot
change how it reads) and whose session still has the policy and guard context it was decided
under, or, not taught here, whose verdict another session with an equal identity context
taught under the current policy (``session.guard.taught``, by fingerprint: a ``Repeat``
without a context or head: the session's head for its record comes from
``handler.shared_head(repeat, fingerprint)``); an execution (without a cursor) of a taught
prepared statement the session still has. Not a query that mentions ``sql_mode`` (its end
may change how later texts read), nor while the proxy drains or the audit trail cannot be
written: the handler answers those. The core marks the session busy with the statement's
text. When the response has ended, a ``quiet`` verdict's end (one that changes no session
state: the handler found no USE, schema change, CALL, SET of sql_mode or the character set
or the like in it) is recorded by the core itself when nothing else needs the handler: no
error, the server's NO_BACKSLASH_ESCAPES flag neither set nor to clear
(``session.reading``), no diagnostics withheld (``handler.withheld_diagnostics``), not
draining, and the audit record packed from the verdict's ``head``, or the one
``shared_head`` lends (a ``recordpack.StatementHead``; None while audit is disabled or needs
Python, as for redacted literals): the record goes to the audit writer's tail
(``auditchain.Tail.offer``), or to ``session.trail.enqueue`` when the tail leaves it to the
writer (a rotation due, a failed write, the writer unhealthy); the session is no longer
busy, and ``counts`` (``corecounts.CoreCounts``, one per process) count the command and its
latency. Otherwise the core calls ``handler.repeat_ended(repeat, text, fingerprint, started,
seconds)`` instead of ``response_ended``. Bytes relayed are counted in ``counts`` too.

Settings the handler answered itself (``defer``, see ``session/deferred_settings.py``) go
to the backend in front of the next forwarded command, in the same write; their response
is read and dropped before that command's is relayed.

Handler methods (all synchronous, none may raise):
``command(payload) -> int``, ``columns(header) -> bytes``, ``response_ended()``,
``repeat_ended(...)``, ``shared_head(repeat, fingerprint) -> StatementHead | None``,
``masked_error(run) -> bytes`` (the last run of a masked response that ended in an ERR),
``client_lost(reason)``, ``backend_lost(reason, mid_response)``, ``core_failed(exc)``,
``settings_failed(run)`` (the ERR the backend sent for what was deferred),
``tracked_stale(repeat, fingerprint, tail, ok)`` (the server's OK to a setting answered
with a learned tail differed; the core has unlearned it on ``repeat``). Attributes read:
``withheld_diagnostics``, ``own_trackers`` (the session changed its session trackers).
"""

from __future__ import annotations

import os
import ssl
import time
from typing import Any

from myguard._fast.corecounts_py import QUERY, STMT_EXECUTE
from myguard._fast.fingerprint_py import fingerprint_hash
from myguard._fast.framing_py import PacketBuffer, build_packets
from myguard._fast.resultscan_py import RESPONSE_FETCH, RESPONSE_QUERY
from myguard.protocol.constants import ServerStatus

# What ``handler.command`` returns besides a response kind (resultscan.RESPONSE_*, 1..6).
NO_RESPONSE = 0  # forward it; the protocol answers nothing (COM_STMT_CLOSE, SEND_LONG_DATA)
ANSWERED = -1  # the handler answered (or refused) it itself
DETACH = -2  # the handler needs I/O first: both sockets go back to their packet streams
FORWARDED = -4  # the handler forwarded it itself (rewritten), with ``forward``

# Commands deferred at most (``defer``, ``_answer_setting``): a session that only sets keeps
# forwarding beyond this.
MAX_DEFERRED = 16
_CLIENT_SESSION_TRACK = 1 << 23
_STATE_CHANGED = ServerStatus.SERVER_SESSION_STATE_CHANGED

# Client bytes buffered beyond this (pipelined commands, a LOCAL INFILE the backend has not
# taken yet) pause reading from the client.
PAUSE_READING_AT = 1 << 20

_DETACHED = 0
_IDLE = 1
_RELAY = 2
_INFILE = 3
_CLOSED = 4
_COM_QUERY = 0x03
_COM_STMT_EXECUTE = 0x17
_UNCLEAR = frozenset(b'"\\') | frozenset(range(0x80, 0x100))
_NO_BACKSLASH_ESCAPES = ServerStatus.SERVER_STATUS_NO_BACKSLASH_ESCAPES


class Repeat:
    """A verdict the handler taught the core: the ``decision`` of a query shape made under
    ``policy`` and the guard ``context``, or a prepared statement's (``prepared``, with its
    ``text`` and ``fingerprint``); ``head`` packs its audit records, and ``quiet`` says its
    end changes no session state."""

    __slots__ = (
        "decision", "policy", "context", "fingerprint", "text", "prepared", "head", "quiet",
        "autocommit", "names", "tracked",
    )  # fmt: skip

    def __init__(
        self,
        decision: Any,
        policy: Any,
        context: Any,
        fingerprint: int | None = None,
        text: str | None = None,
        prepared: Any = None,
        head: Any = None,
        quiet: bool = False,
        autocommit: int = -1,
        names: str | None = None,
        tracked: bytes | None = None,
    ) -> None:
        self.decision = decision
        self.policy = policy
        self.context = context
        self.fingerprint = fingerprint
        self.text = text
        self.prepared = prepared
        self.head = head
        self.quiet = quiet
        # A SET autocommit of exactly ``text`` setting it to this (0 or 1), which the core
        # answers itself and defers (``_answer_setting``); -1: not one.
        self.autocommit = autocommit
        # A SET NAMES of exactly ``text``, whose set reads texts with this codec: the core
        # answers it itself while the session reads with it already (nothing to follow).
        self.names = names
        # For clients that track session state: what follows the status flags and
        # warnings in the server's OK to that SET (deferred_settings.tracked_tail); None:
        # not learned (or unlearned: the server's OK differed), such clients go to the
        # handler. The one field the core writes: it unlearns what the server contradicts.
        self.tracked = tracked


class ClientSide:
    """The client socket's protocol while the core owns it."""

    __slots__ = ("core",)

    def __init__(self, core: ProxyCore) -> None:
        self.core = core

    def data_received(self, data: bytes) -> None:
        self.core.client_data(data)

    def eof_received(self) -> bool:
        self.core.client_gone("connection closed by peer")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.core.client_gone(str(exc) if exc else "connection closed by peer")

    def pause_writing(self) -> None:
        self.core.client_writable(False)

    def resume_writing(self) -> None:
        self.core.client_writable(True)


class BackendSide:
    """The backend socket's protocol while the core owns it."""

    __slots__ = ("core",)

    def __init__(self, core: ProxyCore) -> None:
        self.core = core

    def data_received(self, data: bytes) -> None:
        self.core.backend_data(data)

    def eof_received(self) -> bool:
        self.core.backend_gone("connection closed by peer")
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.core.backend_gone(str(exc) if exc else "connection closed by peer")

    def pause_writing(self) -> None:
        self.core.backend_writable(False)

    def resume_writing(self) -> None:
        self.core.backend_writable(True)


class Sender:
    """Writes one side's bytes: straight to the socket while the transport holds nothing
    unsent (the event loop's write path costs about what the system call does), else
    through the transport, which then keeps them in order and reports a failure. Never
    once the transport is closing: its descriptor may already belong to another connection,
    and the transport refuses the write (``write`` says False; the core then takes that side
    as gone, as its connection_lost will). Through the layer (TLS, compression) when there is
    one."""

    def __init__(self, transport: Any, layer: Any) -> None:
        self.transport = transport
        self.layer = layer
        self.fd = socket_fd(transport) if layer is None else -1
        self.buffered = True  # written before the core took over may still be unsent

    def write(self, data: bytes) -> bool:
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
                try:
                    sent = os.write(self.fd, data)
                except OSError:  # full (EAGAIN) or failed: the transport's to handle
                    sent = 0
                if sent == len(data):
                    return True
                data = data[sent:]
                self.buffered = True
        transport.write(data)
        return True


def layer_error(exc: Exception) -> str:
    """Why a side is gone when its layer could not read what came: a TLS error, or a
    malformed compressed packet (the layer's ValueError says so)."""
    return f"TLS error: {exc}" if isinstance(exc, ssl.SSLError) else str(exc)


def socket_fd(transport: Any) -> int:
    """The transport's socket descriptor, or -1 when it has none to write to directly."""
    get = getattr(transport, "get_extra_info", None)
    sock = get("socket") if get is not None else None
    try:
        return sock.fileno() if sock is not None else -1
    except (AttributeError, OSError):
        return -1


class ProxyCore:
    """Relays one session's commands and responses between two transports."""

    def __init__(self, handler: Any, scanner: Any, max_payload: int, counts: Any) -> None:
        self.handler = handler
        self.scanner = scanner
        self.counts = counts  # corecounts.CoreCounts: bytes, commands ended on taught verdicts
        self.repeats: dict[int, Repeat] = {}  # taught verdicts of queries, by fingerprint
        self.executes: dict[int, Repeat] = {}  # of prepared statements, by statement id
        self._session = getattr(handler, "session", None)
        # The taught command being relayed: (repeat, text, fingerprint, started, clock).
        self._repeat: tuple[Repeat, str, int, float, float] | None = None
        self.requests = PacketBuffer(max_payload)  # client bytes not yet taken as commands
        self.client_side = ClientSide(self)
        self.backend_side = BackendSide(self)
        self._state = _DETACHED
        self._client = None  # (transport, its layer or None) of each side while attached
        self._backend = None
        self._client_stream: Any = None
        self._backend_stream: Any = None
        self._pending = b""  # backend bytes not scanned yet (an unfinished packet)
        self._infile_seq = 0
        self._client_lost: str | None = None
        self._backend_lost: str | None = None
        self._client_blocked = False  # the client's send buffer is full
        self._backend_blocked = False
        self._client_paused = False  # we paused reading from that side
        self._backend_paused = False
        self._masked = False  # this response's metadata goes through the handler
        self._holding = False  # collecting a result set's metadata for the handler
        self._held = b""
        self._masker: Any = None
        self._binary = False
        self._discard = False
        self._kind = 0  # the response kind of the command being relayed
        # Commands the session left for the backend (its checkout's, settings the handler
        # answered itself), sent in front of the next forwarded command (``defer``); the
        # number of their responses still to read and drop.
        self.deferred: list[bytes] = []
        self._settling = 0
        # Settings answered with a learned tail, to check against the server's own OK: by
        # position in ``deferred``; once sent, by the number still to settle at theirs.
        self._checks: dict[int, tuple[Repeat, int, bytes]] = {}
        self._expect: dict[int, tuple[Repeat, int, bytes]] = {}
        self.sent = False  # anything written to the backend (the pool resets what was)
        # The handler asks for the end of the next response (``take_kept``).
        self.keep_end = False
        self._kept: bytes | None = None

    # -- taking over and handing back ------------------------------------------------------

    def attach(self, client_stream: Any, backend_stream: Any) -> None:
        """Take both sockets from their packet streams; then ``serve`` or ``forward``."""
        self._client_stream = client_stream
        self._backend_stream = backend_stream
        self._repeat = None
        transport, layer, unread, self._client_blocked = client_stream.hand_over()
        self._client = (transport, layer)
        self._client_sender = Sender(transport, layer)
        self.requests.checks_sequence = client_stream.checks_sequence
        transport.set_protocol(self.client_side)
        if unread:
            self.requests.feed(unread)
        transport, layer, unread, self._backend_blocked = backend_stream.hand_over()
        self._backend = (transport, layer)
        self._backend_sender = Sender(transport, layer)
        transport.set_protocol(self.backend_side)
        if unread:
            self._pending += unread
        self._state = _IDLE

    def serve(self) -> None:
        """Take the client's buffered commands (after ``attach``)."""
        self._serve()

    def forward(self, payload: bytes, kind: int, masked: bool) -> None:
        """Send a command the handler decided on and relay its response of ``kind``."""
        self._masked = masked
        self._holding = masked and kind != RESPONSE_FETCH
        self._discard = False
        if not masked:
            self._masker = None
        self._kind = kind
        self._state = _RELAY
        data = build_packets(payload, 0)[0]
        if self.deferred:
            # In the same write, so the backend applies them first (_settle drops their OKs).
            data = b"".join([build_packets(p, 0)[0] for p in self.deferred]) + data
            self._settling = count = len(self.deferred)
            self.deferred = []
            if self._checks:
                self._expect = {count - i: check for i, check in self._checks.items()}
                self._checks = {}
            self.scanner.start(RESPONSE_QUERY)
        else:
            self.scanner.start(kind, not masked, masked)
        self._write_backend(data)
        if self._pending:
            self._relay(b"")

    def defer(self, payloads: list[bytes]) -> None:
        """Send ``payloads``, commands whose answer the client does not wait for (each an
        OK, or ERR), in front of the next forwarded command, after those deferred
        before."""
        self.deferred.extend(payloads)

    def take_deferred(self) -> list[bytes]:
        """What was deferred and not sent (the session task sends it before its own I/O)."""
        payloads, self.deferred = self.deferred, []
        self._checks = {}
        return payloads

    def take_kept(self) -> bytes | None:
        """What the client got of the chunk that ended the response ``keep_end`` asked
        for (unmasked: an OK's packet, whole); None when no response ended so."""
        kept, self._kept = self._kept, None
        return kept

    def mask_rows(self, masker: Any, binary: bool) -> None:
        """Rows of the current result set go through ``masker.rewrite_packets``."""
        self._masker = masker
        self._binary = binary

    def discard_rest(self) -> None:
        """The handler refused this result: drop the rest of the response."""
        self._discard = True

    def detach(self) -> None:
        """Give both sockets back to their packet streams, with what they sent unread."""
        if self._state == _DETACHED:
            return
        self._state = _DETACHED
        self._resume(True)
        self._resume(False)
        unread, self._pending = self._pending, b""
        self._backend_stream.take_back(unread, self._backend_blocked, self._backend_lost)
        self._client_stream.take_back(self.requests.take(), self._client_blocked, self._client_lost)

    def close(self) -> None:
        self._state = _CLOSED
        for side in (self._client, self._backend):
            if side is not None and not side[0].is_closing():
                side[0].close()

    # -- writing -----------------------------------------------------------------------------

    def write_client(self, data: bytes) -> None:
        if self._client_lost is None and not self._client_sender.write(data):
            self.client_gone("connection closed")

    def answer(self, payloads: list[bytes]) -> None:
        """Send packets of myguard's own as the response to the current command."""
        seq = 1
        for payload in payloads:
            data, seq = build_packets(payload, seq)
            self.write_client(data)

    def _write_backend(self, data: bytes) -> None:
        self.sent = True
        self.counts.bytes_to_backend += len(data)
        if not self._backend_sender.write(data):  # closed while the session task had it
            self.backend_gone("connection closed")

    # -- the client side ---------------------------------------------------------------------

    def client_data(self, data: bytes) -> None:
        layer = self._client[1]
        if layer is not None:
            try:
                data = layer.unwrap(data)
            except (ssl.SSLError, ValueError) as exc:  # TLS, the compressed protocol
                self.client_gone(layer_error(exc))
                self._client[0].close()
                return
        if data:
            self.requests.feed(data)
        state = self._state
        if state == _IDLE:
            self._serve()
        elif state == _INFILE:
            self._infile()
        # Commands pipelined behind a response wait; a command itself must arrive whole.
        if (
            self._state == _RELAY
            and len(self.requests) > PAUSE_READING_AT
            and not self._client_paused
        ):
            self._client_paused = True
            self._client[0].pause_reading()

    def _serve(self) -> None:
        """Take buffered commands until one needs a response or the handler takes over."""
        handler = self.handler
        try:
            while self._state == _IDLE:
                got = self.requests.next_packet(0)
                if got is None:
                    if not self._backend_blocked:
                        self._resume(True)
                    return
                payload = got[0]
                if self._taught(payload):
                    continue
                verdict = handler.command(payload)
                if verdict > 0:
                    self.forward(payload, verdict, False)
                elif verdict == NO_RESPONSE:
                    self._write_backend(build_packets(payload, 0)[0])
                elif verdict == DETACH:
                    self.detach()
        except Exception as exc:  # malformed framing; the handler ends the session
            self._state = _CLOSED
            handler.core_failed(exc)

    def _taught(self, payload: bytes) -> bool:
        """Forward ``payload`` on a taught verdict; False when the handler must decide."""
        session = self._session
        if not payload or session is None:
            return False
        if payload[0] == _COM_QUERY:
            if not self.repeats and session.guard.taught is None:
                return False
            if not _UNCLEAR.isdisjoint(payload[1:]):
                return False
            if b"sql_mode" in payload.lower():  # its end may change how texts read (handler)
                return False
            fingerprint = fingerprint_hash(payload[1:])
            entry = self.repeats.get(fingerprint)
            if entry is not None:
                if entry.context is not session.guard.context:
                    return False
            else:  # one another session of this identity context taught
                taught = session.guard.taught
                entry = taught.get(fingerprint) if taught is not None else None
            if entry is None or entry.policy is not session.ctx.policy:
                return False
            text = payload[1:].decode("ascii")
        elif payload[0] == _COM_STMT_EXECUTE:
            if len(payload) < 10 or payload[5] != 0 or not self.executes:  # [5]: cursor flags
                return False
            stmt_id = int.from_bytes(payload[1:5], "little")
            entry = self.executes.get(stmt_id)
            if entry is None or session.prepared.get(stmt_id) is not entry.prepared:
                return False
            text, fingerprint = entry.text, entry.fingerprint
        else:
            return False
        if session.ctx.draining:
            return False
        writer = session.trail.writer
        if writer is not None and not writer.healthy:
            return False
        if entry.autocommit >= 0 or entry.names is not None:
            return self._answer_setting(entry, payload, text, fingerprint)
        clock = time.monotonic()
        session.busy = True
        session.last_active = clock
        session.current_statement = text
        self._repeat = (entry, text, fingerprint, time.time(), clock)
        self.forward(payload, RESPONSE_QUERY, False)
        return True

    def _ended(self) -> None:
        """The response has ended: the handler hears of it, unless the command was
        forwarded on a taught verdict and its end is one the core records itself. Taught
        commands are counted here, whoever records them."""
        repeat = self._repeat
        if repeat is None:
            self.handler.response_ended()
            return
        self._repeat = None
        entry, text, fingerprint, started, clock = repeat
        seconds = time.monotonic() - clock
        if not self._end_taught(entry, text, fingerprint, started):
            self.handler.repeat_ended(entry, text, fingerprint, started)
        if entry.prepared is None:
            self.counts.cache_hits += 1
            self.counts.done(QUERY, seconds)
        else:
            self.counts.done(STMT_EXECUTE, seconds)

    def _end_taught(self, entry: Repeat, text: str, fingerprint: int, started: float) -> bool:
        """Record the end of a taught command (its audit record); False when the
        handler must: it changed or reports session state (an error, the server's
        NO_BACKSLASH_ESCAPES flag set or to clear, diagnostics withheld to clear), the
        proxy drains, or audit needs Python for its record."""
        scanner = self.scanner
        session = self._session
        if (
            not entry.quiet
            or scanner.error_code
            or scanner.status & _NO_BACKSLASH_ESCAPES
            or session.reading.no_backslash_escapes
            or session.ctx.draining
            or self.handler.withheld_diagnostics
        ):
            return False
        head = self._head(entry, fingerprint)
        if head is False:
            return False
        self._record(head, text, fingerprint, scanner.rows, scanner.affected_rows, started)
        session.busy = False
        return True

    def _answer_setting(self, entry: Repeat, payload: bytes, text: str, fingerprint: int) -> bool:
        """Answer a taught ``SET autocommit`` or ``SET NAMES`` with the OK the server would
        send (the session's status flags of the last answer, autocommit as set) and defer
        it to the next forwarded command (session/deferred_settings.py says why that is
        safe). False when the handler must: another text of the shape (another value), the
        status not known, autocommit switched on (that commits), a set the session's texts
        do not read in already (the handler follows the change), a client that tracks
        session state and whose OK for the text was not learned (``Repeat.tracked``) or
        that changed its own trackers, ``MAX_DEFERRED`` waiting, diagnostics withheld to
        clear, a record needing Python."""
        session = self._session
        status = self.scanner.known_status
        tail = b""
        if session.capabilities & _CLIENT_SESSION_TRACK:
            tail = entry.tracked
            if tail is None or self.handler.own_trackers:
                return False
        if (
            text != entry.text
            or status < 0
            or len(self.deferred) >= MAX_DEFERRED
            or self.handler.withheld_diagnostics
        ):
            return False
        status &= ServerStatus.SESSION_FLAGS
        if entry.names is not None:
            if not session.reading.unchanged_by_names(entry.names):
                return False
        elif entry.autocommit:
            if not status & ServerStatus.SERVER_STATUS_AUTOCOMMIT:
                return False
        else:
            status &= ~ServerStatus.SERVER_STATUS_AUTOCOMMIT
        head = self._head(entry, fingerprint)
        if head is False:
            return False
        started, clock = time.time(), time.monotonic()
        if tail:
            self._checks[len(self.deferred)] = (entry, fingerprint, tail)
        self.deferred.append(payload)
        self.scanner.known_status = status
        flags = status | _STATE_CHANGED if tail else status
        self.write_client(
            build_packets(b"\x00\x00\x00" + flags.to_bytes(2, "little") + b"\x00\x00" + tail, 1)[0]
        )
        self._record(head, text, fingerprint, 0, 0, started)
        session.last_active = clock
        session.current_statement = text
        self.counts.cache_hits += 1
        self.counts.done(QUERY, time.monotonic() - clock)
        return True

    def _head(self, entry: Repeat, fingerprint: int) -> Any:
        """The head that packs a taught command's audit record: its own, or the one the
        handler lends this session for another session's verdict; None while audit is
        disabled; False when the record needs Python (redaction)."""
        head = entry.head
        if head is None and self._session.trail.writer is not None:
            if entry.context is not None:  # the session's own, without a head: redaction
                return False
            head = self.handler.shared_head(entry, fingerprint)
            if head is None:
                return False
        return head

    def _record(
        self, head: Any, text: str, fingerprint: int, rows: int, affected: int, started: float
    ) -> None:
        if head is None:
            return
        session = self._session
        now = time.time()
        body = head.pack(
            now, text, session.database, fingerprint, None, None, rows, affected, None,
            started, now - started, None,
        )  # fmt: skip
        trail = session.trail
        if not trail.writer.tail.offer(body):
            trail.enqueue(body)

    def _infile(self) -> None:
        """Relay a LOAD DATA LOCAL file: client packets until an empty one."""
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
        if self._pending:
            self._relay(b"")

    def client_gone(self, reason: str) -> None:
        if self._client_lost is not None:
            return
        self._client_lost = reason
        if self._state != _DETACHED:
            self._state = _CLOSED
            self.handler.client_lost(reason)

    def client_writable(self, writable: bool) -> None:
        self._client_blocked = not writable
        if self._state != _DETACHED:
            if writable:
                self._resume(False)
            elif not self._backend_paused:
                self._backend_paused = True
                self._backend[0].pause_reading()

    # -- the backend side --------------------------------------------------------------------

    def backend_data(self, data: bytes) -> None:
        layer = self._backend[1]
        if layer is not None:
            try:
                data = layer.unwrap(data)
            except (ssl.SSLError, ValueError) as exc:  # TLS, the compressed protocol
                self.backend_gone(layer_error(exc))
                self._backend[0].close()
                return
        if self._state == _RELAY:
            self._relay(data)
        elif data:
            self._pending += data

    def _relay(self, data: bytes) -> None:
        if self._pending:
            data = self._pending + data
            self._pending = b""
        scanner = self.scanner
        if self._settling:
            rest = self._settle(data)
            if rest is None:
                return
            data = rest
        out: list[bytes] = []
        try:
            if self._masked:
                used = self._relay_masked(data, out)
            else:
                used = scanner.scan(data)
                if used:
                    out.append(data if used == len(data) else data[:used])
        except Exception as exc:  # a response that breaks the grammar, a failed rewrite
            self._state = _CLOSED
            self.handler.core_failed(exc)
            return
        self.counts.bytes_to_client += used
        if used < len(data):
            self._pending = data[used:]
        if scanner.done:
            # The statement's audit record reaches the kernel before the client sees the
            # end of its response: a crash after that loses no acknowledged statement.
            self._state = _IDLE
            if self.keep_end:
                self.keep_end = False
                self._kept = None if self._masked or not out else out[0]
            self._ended()
            if self._masked and scanner.error_code and out:
                out[-1] = self.handler.masked_error(out[-1])  # the ERR is its last packet
            self._send(out)
            self._serve()
            return
        self._send(out)
        if scanner.local_infile:
            self._state = _INFILE
            self._infile_seq = (scanner.last_seq + 1) & 0xFF
            self._infile()

    def _settle(self, data: bytes) -> bytes | None:
        """Read the deferred commands' responses off ``data``: what follows them once each
        has ended in an OK (the command's response, scanned from its start); None while
        they have not, or when one ended in an error (``handler.settings_failed``)."""
        scanner = self.scanner
        while self._settling:
            try:
                used = scanner.scan(data)
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
                scanner.start(RESPONSE_QUERY)
        scanner.start(self._kind, not self._masked, self._masked)
        return data

    def _check_tail(self, check: tuple[Repeat, int, bytes], ok: bytes) -> None:
        """The server's own OK (payload) to a setting answered with a learned tail: one
        that differs unlearns it (``handler.tracked_stale``)."""
        entry, fingerprint, tail = check
        if ok[:3] != b"\x00\x00\x00" or ok[5:7] != b"\x00\x00" or ok[7:] != tail:
            entry.tracked = None
            self.handler.tracked_stale(entry, fingerprint, tail, ok)

    def _send(self, runs: list[bytes]) -> None:
        """One write (a system call) for the runs of one received chunk."""
        if runs:
            self.write_client(runs[0] if len(runs) == 1 else b"".join(runs))

    def _relay_masked(self, data: bytes, out: list[bytes]) -> int:
        """Scan ``data`` one result-set boundary at a time, adding what the client gets to
        ``out``; the bytes consumed."""
        scanner = self.scanner
        pos = 0
        while True:
            used = scanner.scan(data[pos:])
            run = data[pos : pos + used]
            pos += used
            if self._holding:
                self._held += run
                if scanner.at_rows:
                    scanner.at_rows = False
                    self._holding = False
                    header, self._held = self._held, b""
                    if not self._discard:
                        out.append(self.handler.columns(header))
                elif scanner.at_result_start() or scanner.done or scanner.local_infile:
                    held, self._held = self._held, b""  # OK/ERR packets, no metadata
                    if not self._discard:
                        out.append(held)
            else:
                if run and not self._discard:
                    if self._masker is not None:
                        run = self._masker.rewrite_packets(run, self._binary)
                    out.append(run)
                if scanner.at_result_start() and not scanner.done:
                    self._holding = True
                    self._masker = None
            if not used or scanner.done or scanner.local_infile:
                return pos

    def backend_gone(self, reason: str) -> None:
        if self._backend_lost is not None:
            return
        self._backend_lost = reason
        state = self._state
        if state != _DETACHED and state != _CLOSED:
            self._state = _CLOSED
            self.handler.backend_lost(reason, state != _IDLE)

    def backend_writable(self, writable: bool) -> None:
        self._backend_blocked = not writable
        if self._state != _DETACHED:
            if writable:
                self._resume(True)
            elif not self._client_paused:
                self._client_paused = True
                self._client[0].pause_reading()

    def _resume(self, client: bool) -> None:
        if client and self._client_paused:
            self._client_paused = False
            self._client[0].resume_reading()
        elif not client and self._backend_paused:
            self._backend_paused = False
            self._backend[0].resume_reading()
