"""Property tests of the proxy core: the compiled module and its pure-Python twin agree,
and both relay every response byte for byte, whatever the chunking.

Random well-formed responses of every kind (the grammar of ``test_resultscan_props``)
arrive in random chunks after a command that itself arrives in random chunks, followed
by a pipelined second command; each core must forward the command unchanged, hand the
client exactly the response, report its end once, then forward the second command. The
compiled module is imported explicitly: these tests fail, not skip, when it is not built.
"""

from __future__ import annotations

import asyncio
import importlib

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_resultscan_props import cut, feed, frame, responses

from myguard._fast import twin
from myguard.session.text_reading import TextReading

compiled = importlib.import_module("myguard._fast.proxycore")
compiled_fingerprint = importlib.import_module("myguard._fast.fingerprint")
python = twin("proxycore")
COUNTS = {
    compiled: importlib.import_module("myguard._fast.corecounts"),
    python: twin("corecounts"),
}
RECORDPACKS = {
    compiled: importlib.import_module("myguard._fast.recordpack"),
    python: twin("recordpack"),
}
SCANNERS = {
    compiled: importlib.import_module("myguard._fast.resultscan"),
    python: twin("resultscan"),
}
SIMPLE = 6
OK = b"\x00\x00\x00\x02\x00\x00\x00"
COLDEF = b"\x03def\x00\x01t\x01t\x01c\x01c\x0c!\x00\x0b\x00\x00\x00\xfd\x00\x00\x00\x00\x00"


class Transport:
    def __init__(self) -> None:
        self.protocol = None
        self.written = bytearray()
        self.writes: list[bytes] = []  # each write apart
        self.paused = False
        self.closed = False

    def set_protocol(self, protocol) -> None:
        self.protocol = protocol

    def write(self, data: bytes) -> None:
        self.written += data
        self.writes.append(bytes(data))

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


class Stream:
    checks_sequence = True  # a plain packet stream (no compressed protocol)

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.taken_back = None

    def hand_over(self):
        return self.transport, None, b"", False

    def take_back(self, unread: bytes, blocked: bool, lost: str | None) -> None:
        self.transport.set_protocol(self)
        self.taken_back = (unread, blocked, lost)


class Handler:
    def __init__(self, kinds: list[int]) -> None:
        self.kinds = kinds
        self.events: list = []
        self.core = None

    def command(self, payload: bytes) -> int:
        self.events.append(("command", payload))
        return self.kinds.pop(0)

    def response_ended(self) -> None:
        s = self.core.scanner
        self.events.append(("ended", s.rows, s.error_code, s.status, s.affected_rows))

    def client_lost(self, reason: str) -> None:
        self.events.append(("client_lost", reason))

    def backend_lost(self, reason: str, mid_response: bool) -> None:
        self.events.append(("backend_lost", reason, mid_response))

    def core_failed(self, exc: Exception) -> None:
        self.events.append(("failed", type(exc).__name__))


def attached(impl, handler, deprecate_eof: bool = True):
    """A core of ``impl`` attached to two fake transports: (core, client, backend, streams)."""
    core = handler.core = impl.ProxyCore(
        handler,
        SCANNERS[impl].ResponseScanner(deprecate_eof),
        1 << 24,
        COUNTS[impl].CoreCounts([0.001, float("inf")]),
    )
    client, backend = Transport(), Transport()
    streams = Stream(client), Stream(backend)
    core.attach(*streams)
    return core, client, backend, streams


def asks_file(kind: int, deprecate_eof: bool, response: bytes) -> bool:
    scanner = SCANNERS[python].ResponseScanner(deprecate_eof)
    scanner.start(kind, True)
    scanner.scan(response)
    return scanner.local_infile


def run(impl, kind: int, deprecate_eof: bool, response: bytes, command_cuts, response_cuts):
    handler = Handler([kind, SIMPLE])
    core, client, backend, _ = attached(impl, handler, deprecate_eof)
    core.serve()
    # A query, then a pipelined COM_PING; a client sends no command while it owes a file.
    ping = frame([b"\x0e"], 0)
    commands = frame([b"\x03SELECT 1"], 0) + (
        b"" if asks_file(kind, deprecate_eof, response) else ping
    )
    for part in cut(commands, command_cuts):
        client.protocol.data_received(part)
    infile_sent = False
    for part in cut(response, response_cuts):
        backend.protocol.data_received(part)
        while core.scanner.local_infile:
            infile_sent = True  # the client's empty packet ends the (empty) file
            client.protocol.data_received(frame([b""], (core.scanner.last_seq + 1) & 0xFF))
    relayed = bytes(client.written)
    if infile_sent:
        client.protocol.data_received(ping)
    backend.protocol.data_received(frame([OK], 1))
    return handler.events, relayed, bytes(backend.written), bytes(client.written)


@settings(max_examples=300, deadline=None)
@given(
    responses(),
    st.lists(st.integers(0, 10**6), max_size=6),
    st.lists(st.integers(0, 10**6), max_size=25),
)
def test_both_cores_relay_responses_exactly(response, command_cuts, response_cuts):
    kind, deprecate_eof, data = response
    got = run(compiled, kind, deprecate_eof, data, command_cuts, response_cuts)
    want = run(python, kind, deprecate_eof, data, command_cuts, response_cuts)
    assert got == want
    events, relayed, to_backend, to_client = want
    # the first response ended exactly where its bytes ended, then the ping ran
    assert [e[0] for e in events] == ["command", "ended", "command", "ended"]
    assert relayed == data
    assert to_client == data + frame([OK], 1)
    assert to_backend.startswith(frame([b"\x03SELECT 1"], 0))
    assert to_backend.endswith(frame([b"\x0e"], 0))


def test_backend_loss_mid_response_is_reported_once():
    for impl in (compiled, python):
        handler = Handler([1])
        core, client, backend, _ = attached(impl, handler)
        core.serve()
        client.protocol.data_received(frame([b"\x03SELECT 1"], 0))
        backend.protocol.data_received(frame([b"\x01"], 1))  # a column count, then nothing
        backend.protocol.connection_lost(None)
        backend.protocol.eof_received()
        assert handler.events[-1] == ("backend_lost", "connection closed by peer", True)
        assert [e[0] for e in handler.events].count("backend_lost") == 1


def test_detach_hands_back_unread_bytes():
    for impl in (compiled, python):
        handler = Handler([python.DETACH])
        core, client, backend, (client_stream, backend_stream) = attached(impl, handler)
        core.serve()
        client.protocol.data_received(frame([b"\x03KILL 5"], 0) + frame([b"\x0e"], 0)[:3])
        assert client.protocol is client_stream and backend.protocol is backend_stream
        assert client_stream.taken_back == (frame([b"\x0e"], 0)[:3], False, None)


def test_full_client_send_buffer_pauses_the_backend():
    for impl in (compiled, python):
        handler = Handler([1])
        core, client, backend, _ = attached(impl, handler)
        core.serve()
        client.protocol.pause_writing()
        assert backend.paused
        client.protocol.resume_writing()
        assert not backend.paused


class MaskingHandler(Handler):
    """Sees each result set's metadata and stamps the runs it masks, so the test can
    tell which bytes went through the masker."""

    def __init__(self, kinds: list[int]) -> None:
        super().__init__(kinds)
        self.headers: list[bytes] = []

    def columns(self, header: bytes) -> bytes:
        self.headers.append(header)
        self.core.mask_rows(self, True)
        return header

    def rewrite_packets(self, run: bytes, binary: bool) -> bytes:
        self.events.append(("masked", run))
        return run

    def masked_error(self, run: bytes) -> bytes:
        self.events.append(("error_run", run))
        return run


def run_masked(impl, kind: int, deprecate_eof: bool, response: bytes, response_cuts):
    handler = MaskingHandler([])
    core, client, backend, _ = attached(impl, handler, deprecate_eof)
    if kind == 3:  # FETCH: a cursor's rows, masked by the masker of its EXECUTE
        core.mask_rows(handler, True)
    core.forward(b"\x03SELECT 1", kind, True)
    for part in cut(response, response_cuts):
        backend.protocol.data_received(part)
        while core.scanner.local_infile:
            client.protocol.data_received(frame([b""], (core.scanner.last_seq + 1) & 0xFF))
    return handler.events, handler.headers, bytes(client.written)


@settings(max_examples=300, deadline=None)
@given(responses(), st.lists(st.integers(0, 10**6), max_size=25))
def test_masked_responses_pass_every_row_through_the_masker(response, response_cuts):
    kind, deprecate_eof, data = response
    if kind not in (1, 2, 3):  # QUERY, EXECUTE, FETCH carry rows
        return
    got = run_masked(compiled, kind, deprecate_eof, data, response_cuts)
    want = run_masked(python, kind, deprecate_eof, data, response_cuts)
    assert got == want
    events, headers, to_client = want
    assert to_client == data
    if events[-1][0] == "error_run":  # the run handed over ends with the ERR packet
        run = events.pop()[1]
        assert data.endswith(run)
        last = 0
        while last + 4 + int.from_bytes(run[last : last + 3], "little") < len(run):
            last += 4 + int.from_bytes(run[last : last + 3], "little")
        assert run[last + 4] == 0xFF
    assert events[-1][0] == "ended"
    masked = b"".join(e[1] for e in events if e[0] == "masked")
    # Every row went through the masker: scanning what it saw finds all the rows.
    expected_rows = feed(SCANNERS[python], kind, deprecate_eof, False, [data])[1]["rows"]
    rows_seen = SCANNERS[python].ResponseScanner(deprecate_eof)
    rows_seen.start(3)  # FETCH: rows state from the first byte
    counted = 0
    pos = 0
    while pos < len(masked):
        rows_seen.start(3)
        used = rows_seen.scan(masked[pos:])
        counted += rows_seen.rows
        if not used:
            break
        pos += used
    assert counted == expected_rows
    for header in headers:
        assert header[4] not in (0x00, 0xFE, 0xFF)  # a column count starts each header


def test_refused_result_drops_the_rest():
    for impl in (compiled, python):

        class Refusing(MaskingHandler):
            def columns(self, header: bytes) -> bytes:
                self.core.discard_rest()
                return b"REFUSED"

        handler = Refusing([])
        core, client, backend, _ = attached(impl, handler)
        core.forward(b"\x03SELECT ssn FROM t", 1, True)
        coldef = (
            b"\x03def\x00\x01t\x01t\x03ssn\x03ssn\x0c!\x00\x0b\x00\x00\x00\xfd\x00\x00\x00\x00\x00"
        )
        rows = [b"\x0b123-45-6789"] * 3
        response = frame([b"\x01", coldef, *rows, b"\xfe\x00\x00\x02\x00\x00\x00"], 1)
        backend.protocol.data_received(response)
        assert bytes(client.written) == b"REFUSED"
        assert handler.events[-1][0] == "ended"


def masked_execute(impl, rows_then_end: list[bytes]):
    """A masked COM_STMT_EXECUTE under CLIENT_DEPRECATE_EOF: one column, then the packets."""
    handler = MaskingHandler([])
    core, client, backend, _ = attached(impl, handler)
    core.forward(b"\x17\x01\x00\x00\x00\x01\x01\x00\x00\x00", 2, True)  # cursor asked for
    coldef = b"\x03def\x00\x01t\x01t\x01c\x01c\x0c!\x00\x0b\x00\x00\x00\xfd\x00\x00\x00\x00\x00"
    backend.protocol.data_received(frame([b"\x01", coldef, *rows_then_end], 1))
    return handler, core


def test_cursor_opened_after_metadata_ends_the_response():
    """With DEPRECATE_EOF a cursor's metadata still ends with a terminator (CURSOR_EXISTS),
    not rows: the response ends there and the masker is kept for COM_STMT_FETCH."""
    cursor_end = b"\xfe\x00\x00\x42\x00\x00\x00"
    for impl in (compiled, python):
        handler, core = masked_execute(impl, [cursor_end])
        assert handler.events[-1][0] == "ended" and len(handler.headers) == 1
        assert core.scanner.status & 0x40 and core.scanner.rows == 0


def test_rows_after_metadata_are_masked():
    row = b"\x00\x00\x01x"
    end = b"\xfe\x00\x00\x02\x00\x00\x00"
    for impl in (compiled, python):
        handler, core = masked_execute(impl, [row, end])
        masked = [e[1] for e in handler.events if e[0] == "masked"]
        assert b"".join(masked) == frame([row, end], 3)
        assert core.scanner.rows == 1 and not core.scanner.status & 0x40


def test_response_end_is_reported_before_its_last_bytes_reach_the_client():
    """The audit record is handed over before the client sees the statement end, so a
    crash between the two cannot lose the record of a statement the client saw succeed."""

    class Watching(Handler):
        def response_ended(self) -> None:
            self.events.append(("ended", bytes(self.client.written)))

    for impl in (compiled, python):
        handler = Watching([1])
        core, client, backend, _ = attached(impl, handler)
        handler.client = client
        core.serve()
        client.protocol.data_received(frame([b"\x03SELECT 1"], 0))
        first = frame(
            [
                b"\x01",
                b"\x03def\x00\x00\x00\x01a\x00\x0c!\x00\x01\x00\x00\x00\x08\x00\x00\x00\x00\x00",
            ],
            1,
        )
        rest = frame([b"\x011", b"\xfe\x00\x00\x02\x00\x00\x00"], 3)
        backend.protocol.data_received(first)
        backend.protocol.data_received(rest)
        assert handler.events[-1] == ("ended", first)  # the end was not sent yet
        assert bytes(client.written) == first + rest


@pytest.mark.parametrize("rowmask", ["compiled", "twin"])
def test_a_mask_plan_that_does_not_fit_its_rows_is_a_refusal_not_a_leak(rowmask):
    """A corrupted mask plan (here: two columns planned, rows of one) must stop the
    response: the core reports a failure (the session ends with an error) and no byte of
    the unrewritten row reaches the client."""
    masking = (
        importlib.import_module("myguard._fast.rowmask")
        if rowmask == "compiled"
        else twin("rowmask")
    )
    secret = b"123-45-6789"

    class Corrupt(MaskingHandler):
        def columns(self, header: bytes) -> bytes:
            self.core.mask_rows(masking.RowMasker([253, 253], [None, lambda v: b"x"]), False)
            return header

    for impl in (compiled, python):
        handler = Corrupt([])
        core, client, backend, _ = attached(impl, handler)
        core.forward(b"\x03SELECT ssn FROM t", 1, True)
        coldef = (
            b"\x03def\x00\x01t\x01t\x03ssn\x03ssn\x0c!\x00\x0b\x00\x00\x00\xfd\x00\x00\x00\x00\x00"
        )
        backend.protocol.data_received(
            frame(
                [b"\x01", coldef, bytes([len(secret)]) + secret, b"\xfe\x00\x00\x02\x00\x00\x00"], 1
            )
        )
        assert handler.events[-1][0] == "failed"
        assert secret not in bytes(client.written)


class Trail:
    """Records what reaches the audit writer: through its tail's ``offer`` when that takes
    it (``takes``), else through ``enqueue``, marked with how it came."""

    def __init__(self) -> None:
        self.writer = None
        self.records: list[tuple[str, dict]] = []
        self.takes = True

    def enqueue(self, body: bytes) -> None:
        self.records.append(("enqueue", msgpack.unpackb(body)))

    def offer(self, body: bytes) -> bool:
        if self.takes:
            self.records.append(("offer", msgpack.unpackb(body)))
        return self.takes

    def audit_on(self) -> None:
        self.writer = type("Writer", (), {"healthy": True, "tail": self})()


class Session:
    """What the core reads of a session to tell whether a taught verdict still holds."""

    def __init__(self) -> None:
        self.ctx = type("Ctx", (), {"policy": object(), "draining": False})()
        self.guard = type("Guard", (), {"context": object(), "taught": None})()
        self.trail = Trail()
        self.reading = TextReading(0, "utf8mb4")
        self.database = "shop"
        self.capabilities = 0
        self.prepared: dict = {}
        self.busy = False
        self.last_active = 0.0
        self.current_statement = None


class TeachingHandler(Handler):
    def __init__(self, kinds: list[int]) -> None:
        super().__init__(kinds)
        self.session = Session()
        self.withheld_diagnostics = False
        self.own_trackers = False

    def tracked_stale(self, repeat, fingerprint, tail, ok) -> None:
        self.events.append(("tracked_stale", repeat, fingerprint, tail, ok))

    def repeat_ended(self, repeat, text, fingerprint, started) -> None:
        assert self.session.busy and started > 0
        self.events.append(("repeat_ended", repeat, text, fingerprint, self.core.scanner.rows))
        self.session.busy = False

    lends = None  # the head shared_head lends for another session's verdict

    def shared_head(self, repeat, fingerprint):
        self.events.append(("shared_head", repeat, fingerprint))
        return self.lends


def sender(client, backend, handler):
    """Send one command and answer it with OK: (forwarded as sent, the handler's calls)."""
    ok = frame([OK], 1)

    def send(payload: bytes) -> tuple:
        backend.written.clear()
        handler.events.clear()
        client.protocol.data_received(frame([payload], 0))
        forwarded = bytes(backend.written) == frame([payload], 0)
        backend.protocol.data_received(ok)
        return forwarded, [e[0] for e in handler.events]

    return send


@pytest.mark.parametrize("impl", [compiled, python], ids=["compiled", "twin"])
def test_taught_verdicts_forward_without_asking_the_handler(impl):
    """A taught query shape, and an execution of a taught prepared statement, go to the
    backend without ``command``; what may read differently, or was decided under another
    policy or guard context, or while draining or with the audit trail down, is asked."""
    fingerprints = {compiled: compiled_fingerprint, python: twin("fingerprint")}[impl]
    handler = TeachingHandler([1] * 12)
    session = handler.session
    core, client, backend, _ = attached(impl, handler)
    core.serve()
    query = b"\x03SELECT c FROM t WHERE id = 7"
    fingerprint = fingerprints.fingerprint_hash(query[1:])
    repeat = impl.Repeat("allow", session.ctx.policy, session.guard.context)
    core.repeats[fingerprint] = repeat
    prepared = object()
    session.prepared[9] = prepared
    core.executes[9] = impl.Repeat("allow", None, None, 42, "SELECT 1", prepared)
    send = sender(client, backend, handler)

    assert send(b"\x03select c from t where id = 8") == (True, ["repeat_ended"])
    assert handler.events[0][1:4] == (repeat, "select c from t where id = 8", fingerprint)
    assert session.current_statement == "select c from t where id = 8"
    assert send(b"\x17\x09\x00\x00\x00\x00\x01\x00\x00\x00") == (True, ["repeat_ended"])
    assert handler.events[0][2:4] == ("SELECT 1", 42)
    asked = (True, ["command", "ended"])
    assert send(b"\x17\x09\x00\x00\x00\x01\x01\x00\x00\x00") == asked  # opens a cursor
    assert send(b'\x03SELECT c FROM t WHERE id = "7"') == asked  # ANSI_QUOTES may apply
    assert send(b"\x03SELECT c FROM t WHERE id = '\\7'") == asked
    assert send("\x03SELECT c FROM t WHERE id = 'é'".encode()) == asked
    session.guard.context = object()  # USE another database
    assert send(query) == asked
    repeat = core.repeats[fingerprint] = impl.Repeat(
        "allow", session.ctx.policy, session.guard.context
    )
    session.ctx.policy = object()  # a reload
    assert send(query) == asked
    core.repeats[fingerprint] = impl.Repeat("allow", session.ctx.policy, session.guard.context)
    session.ctx.draining = True
    assert send(query) == asked
    session.ctx.draining = False
    session.trail.writer = type("Writer", (), {"healthy": False})()
    assert send(query) == asked
    session.trail.writer.healthy = True
    assert send(query) == (True, ["repeat_ended"])
    session.prepared[9] = object()  # closed and prepared again under the same id
    assert send(b"\x17\x09\x00\x00\x00\x00\x01\x00\x00\x00") == asked


@pytest.mark.parametrize("impl", [compiled, python], ids=["compiled", "twin"])
def test_verdicts_another_session_taught_forward_from_the_first_query(impl):
    """A shape this session has no verdict for, but another session of its identity
    context taught (``session.guard.taught``), goes to the backend without ``command``
    under the policy it was decided under; a quiet end is recorded with the head the
    handler lends (``shared_head``), else goes to ``repeat_ended``. A verdict of the
    session's own comes first and must match its guard context."""
    fingerprints = {compiled: compiled_fingerprint, python: twin("fingerprint")}[impl]
    handler = TeachingHandler([1] * 8)
    session = handler.session
    core, client, backend, _ = attached(impl, handler)
    core.serve()
    session.trail.audit_on()
    query = b"\x03SET autocommit = 0"
    fingerprint = fingerprints.fingerprint_hash(query[1:])
    shared = impl.Repeat("allow", session.ctx.policy, None, quiet=True)
    send = sender(client, backend, handler)

    asked = (True, ["command", "ended"])
    assert send(query) == asked  # nothing taught anywhere
    session.guard.taught = {fingerprint: shared}
    lent = (True, ["shared_head", "repeat_ended"])
    assert send(b"\x03set AUTOCOMMIT = 1") == lent  # no head lent: its record needs Python
    assert handler.events[0][1:] == (shared, fingerprint)
    assert handler.events[1][1:4] == (shared, "set AUTOCOMMIT = 1", fingerprint)
    assert not session.trail.records  # the handler records it
    keys = ("t", "ts", "q", "db", "fp", "mc", "aid", "rr", "ra", "ec", "st", "du", "iid")
    handler.lends = RECORDPACKS[impl].StatementHead(keys, 3, b"\xa1u\xa3bob", 1, 1000)
    assert send(b"\x03set AUTOCOMMIT = 1") == (True, ["shared_head"])
    [(way, record)] = session.trail.records
    assert (way, record["u"], record["q"], record["fp"]) == (
        "offer",
        "bob",
        "set AUTOCOMMIT = 1",
        fingerprint,
    )
    assert not session.busy
    noisy = impl.Repeat("allow", session.ctx.policy, None, quiet=False)  # e.g. SET NAMES
    session.guard.taught = {fingerprint: noisy}
    assert send(query) == (True, ["repeat_ended"])
    session.guard.taught = {fingerprint: shared}
    handler.lends = None
    session.ctx.policy = object()  # a reload
    assert send(query) == asked
    session.ctx.policy = shared.policy
    session.guard.taught = None  # USE another database: the guard drops them
    assert send(query) == asked
    session.guard.taught = {fingerprint: shared}
    core.repeats[fingerprint] = impl.Repeat("allow", session.ctx.policy, object())
    assert send(query) == asked  # its own verdict, taught under another guard context
    own = core.repeats[fingerprint] = impl.Repeat(
        "allow", session.ctx.policy, session.guard.context
    )
    assert send(query) == (True, ["repeat_ended"]) and handler.events[0][1] is own


def audited(impl):
    """A core serving a teaching handler whose session writes audit records, and the head
    a taught verdict packs them with."""
    fingerprints = {compiled: compiled_fingerprint, python: twin("fingerprint")}[impl]
    handler = TeachingHandler([1] * 20)
    session = handler.session
    core, client, backend, _ = attached(impl, handler)
    core.serve()
    session.trail.audit_on()
    keys = ("t", "ts", "q", "db", "fp", "mc", "aid", "rr", "ra", "ec", "st", "du", "iid")
    head = RECORDPACKS[impl].StatementHead(keys, 3, b"\xa1u\xa5alice", 1, 1000)
    return fingerprints, handler, session, core, client, backend, head


@pytest.mark.parametrize("impl", [compiled, python], ids=["compiled", "twin"])
def test_quiet_taught_ends_are_recorded_by_the_core(impl):
    """The end of a quiet taught command is recorded by the core (audit record from the
    verdict's head, counts, session no longer busy) without the handler; an end that
    changes or reports session state, or needs Python for its record, goes to
    ``repeat_ended``."""
    fingerprints, handler, session, core, client, backend, head = audited(impl)
    query = b"\x03SELECT c FROM t WHERE id = 7"
    fingerprint = fingerprints.fingerprint_hash(query[1:])

    def teach(**options) -> None:
        core.repeats[fingerprint] = impl.Repeat(
            "allow", session.ctx.policy, session.guard.context, **options
        )

    def send(payload: bytes, response: bytes) -> list:
        handler.events.clear()
        client.protocol.data_received(frame([payload], 0))
        backend.protocol.data_received(response)
        return [e[0] for e in handler.events]

    two_rows = frame([b"\x01", COLDEF, b"\x011", b"\x012", b"\xfe\x00\x00\x02\x00\x00\x00"], 1)
    teach(head=head, quiet=True)
    assert send(b"\x03SELECT c FROM t WHERE id = 8", two_rows) == []
    assert not session.busy
    [(way, record)] = session.trail.records
    assert way == "offer" and record["q"] == "SELECT c FROM t WHERE id = 8"
    assert (record["t"], record["u"], record["db"], record["fp"], record["rr"]) == (
        3,
        "alice",
        "shop",
        fingerprint,
        2,
    )
    assert record["ts"] >= record["st"] > 0 and record["du"] >= 0
    assert "ec" not in record and "mc" not in record
    counts = core.counts
    assert counts.take(0)[0] == 1 and counts.take(1)[0] == 0 and counts.cache_hits == 1
    assert counts.bytes_to_client == len(two_rows)

    prepared = object()
    session.prepared[9] = prepared
    core.executes[9] = impl.Repeat(
        "allow", None, None, 42, "SELECT 1", prepared, head=head, quiet=True
    )
    assert send(b"\x17\x09\x00\x00\x00\x00\x01\x00\x00\x00", frame([OK], 1)) == []
    assert session.trail.records[-1][1]["q"] == "SELECT 1" and counts.take(1)[0] == 1
    session.trail.takes = False  # the writer must write it (a rotation due, a failed write)
    assert send(b"\x17\x09\x00\x00\x00\x00\x01\x00\x00\x00", frame([OK], 1)) == []
    assert session.trail.records[-1][0] == "enqueue" and counts.take(1)[0] == 1

    ok = frame([OK], 1)
    ended = ["repeat_ended"]
    err = frame([b"\xff\x7a\x04#42S02no such table"], 1)
    assert send(query, err) == ended  # an error
    nbe = frame([b"\x00\x00\x00\x00\x02\x00\x00"], 1)  # OK, NO_BACKSLASH_ESCAPES
    assert send(query, nbe) == ended
    session.reading.no_backslash_escapes = True  # to clear
    assert send(query, ok) == ended
    session.reading.no_backslash_escapes = False
    handler.withheld_diagnostics = True
    assert send(query, ok) == ended
    handler.withheld_diagnostics = False
    handler.events.clear()
    client.protocol.data_received(frame([query], 0))
    session.ctx.draining = True  # began draining while the statement ran
    backend.protocol.data_received(ok)
    assert [e[0] for e in handler.events] == ended
    session.ctx.draining = False
    assert send(b"\x03SELECT c FROM t WHERE id = 'sql_MODE'", ok) == ["command", "ended"]
    teach(head=head, quiet=False)  # a USE, SET, CALL, schema change
    assert send(query, ok) == ended
    teach(head=None, quiet=True)  # audit on, but its record needs Python (redaction)
    assert send(query, ok) == ended
    # The core counts the taught ends the handler recorded too; the one it did not teach
    # (sql_mode) the handler counts as any other command.
    taught, _, _ = counts.take(0)
    assert taught == 7 and counts.cache_hits == 8
    session.trail.writer = None  # audit disabled: nothing to record
    records = len(session.trail.records)
    assert send(query, ok) == []
    assert len(session.trail.records) == records and counts.take(0)[0] == 1


# A checkout's reset, identity SET and COM_INIT_DB, then the settings the handler answered.
DEFERRED = [b"\x1f", b"\x03SET @myguard_user = 'x'", b"\x02shop", b"\x03SET autocommit = 0"]


class DeferringHandler(MaskingHandler):
    """Answers the first command itself and defers settings, as the session handler does
    for SET NAMES / SET autocommit; the second goes to the backend with ``kind``."""

    def __init__(self, kind: int, masked: bool) -> None:
        super().__init__([])
        self.kind = kind
        self.masked = masked

    def command(self, payload: bytes) -> int:
        self.events.append(("command", payload))
        if payload.startswith(b"\x03SET"):
            self.core.defer(list(DEFERRED))
            self.core.answer([OK])
            return python.ANSWERED
        if self.masked:
            if self.kind == 3:
                self.core.mask_rows(self, True)
            self.core.forward(payload, self.kind, True)
            return python.FORWARDED
        return self.kind

    def settings_failed(self, run: bytes) -> None:
        self.events.append(("settings_failed", run))


def run_deferred(impl, kind, deprecate_eof, masked, answers, response, cuts):
    handler = DeferringHandler(kind, masked)
    core, client, backend, _ = attached(impl, handler, deprecate_eof)
    core.serve()
    client.protocol.data_received(
        frame([b"\x03SET AUTOCOMMIT = 0"], 0) + frame([b"\x03SELECT 1"], 0)
    )
    before = bytes(client.written)
    for part in cut(answers + response, cuts):
        backend.protocol.data_received(part)
        while core.scanner.local_infile:
            client.protocol.data_received(frame([b""], (core.scanner.last_seq + 1) & 0xFF))
    return handler.events, before, bytes(client.written), backend.writes, core.deferred


@settings(max_examples=300, deadline=None)
@given(
    responses(),
    st.booleans(),
    st.lists(st.integers(0, 10**6), max_size=25),
)
def test_deferred_settings_go_in_front_of_the_next_command_and_their_ok_is_dropped(
    response, masked, cuts
):
    kind, deprecate_eof, data = response
    masked = masked and kind in (1, 2, 3)  # QUERY, EXECUTE, FETCH carry rows
    ok = frame([OK], 1)
    got = run_deferred(compiled, kind, deprecate_eof, masked, ok * len(DEFERRED), data, cuts)
    want = run_deferred(python, kind, deprecate_eof, masked, ok * len(DEFERRED), data, cuts)
    assert got == want
    events, before, to_client, writes, deferred = want
    # the SET was answered at once; what was deferred and the SELECT left in one write
    assert before == ok
    sent = b"".join(frame([p], 0) for p in DEFERRED) + frame([b"\x03SELECT 1"], 0)
    assert writes[0] == sent
    assert deferred == []
    # the client got the SELECT's response, byte for byte, not the deferred ones' OKs
    assert to_client == ok + data
    names = [e[0] for e in events if e[0] != "error_run"]
    assert "settings_failed" not in names
    assert names[-1] == "ended"


@pytest.mark.parametrize("impl", [compiled, python])
def test_an_error_for_deferred_settings_goes_to_the_handler_not_the_client(impl):
    err = frame([b"\xff\x19\x04#42000Unknown database 'shop'"], 1)
    ok = frame([OK], 1)
    events, before, to_client, _, _ = run_deferred(
        impl, 1, True, False, ok + ok + err + ok, ok, [5, 12]
    )
    assert to_client == before == frame([OK], 1)
    assert events[-1] == ("settings_failed", err)


@pytest.mark.parametrize("impl", [compiled, python])
def test_deferred_settings_are_taken_back_when_no_command_followed(impl):
    handler = DeferringHandler(1, False)
    core, client, backend, _ = attached(impl, handler)
    core.serve()
    client.protocol.data_received(frame([b"\x03SET AUTOCOMMIT = 0"], 0))
    assert backend.written == b""
    assert core.take_deferred() == DEFERRED
    assert core.deferred == [] and core.take_deferred() == []


def asker(handler, core, client, backend):
    """Send one setting with nothing deferred before it: did it go to the handler? (Then
    it is forwarded, and answered by the backend's OK.)"""

    def asked(payload: bytes) -> bool:
        core.take_deferred()
        handler.events.clear()
        client.protocol.data_received(frame([payload], 0))
        went = ("command", payload) in handler.events
        if went:
            backend.protocol.data_received(frame([OK], 1))
        return went

    return asked


@pytest.mark.parametrize("impl", [compiled, python], ids=["compiled", "twin"])
def test_a_taught_set_autocommit_is_answered_and_deferred_by_the_core(impl):
    """A SET autocommit the handler answered and taught (``Repeat.autocommit``, its exact
    text) is answered by the core with the server's OK (the session's flags of the last
    answer, autocommit as set), recorded, and sent in front of the next forwarded command;
    another value, an unknown status, switching autocommit on, a client tracking session
    state, ``MAX_DEFERRED`` waiting, diagnostics withheld or a record needing Python go to
    the handler."""
    fingerprints, handler, session, core, client, backend, head = audited(impl)
    off, on = b"\x03SET AUTOCOMMIT = 0", b"\x03SET AUTOCOMMIT = 1"
    fingerprint = fingerprints.fingerprint_hash(off[1:])
    assert fingerprints.fingerprint_hash(on[1:]) == fingerprint

    def teach(payload: bytes, context=session.guard.context, taught_head=head) -> None:
        core.repeats[fingerprint] = impl.Repeat(
            "allow", session.ctx.policy, context, text=payload[1:].decode(),
            head=taught_head, quiet=True, autocommit=payload[-1] - 48,
        )  # fmt: skip

    asked = asker(handler, core, client, backend)
    teach(off)
    core.scanner.known_status = 0x0002 | 0x0020  # autocommit, and a statement's flag
    client.written.clear()
    assert not asked(off)
    assert bytes(client.written) == frame([b"\x00\x00\x00\x00\x00\x00\x00"], 1)
    assert backend.written == b"" and core.scanner.known_status == 0
    [(way, record)] = session.trail.records
    assert (way, record["q"], record["fp"], record["db"]) == (
        "offer", "SET AUTOCOMMIT = 0", fingerprint, "shop"
    )  # fmt: skip
    assert core.counts.cache_hits == 1 and session.current_statement == "SET AUTOCOMMIT = 0"
    assert not session.busy and core.deferred == [off]
    # the next forwarded command carries it; the client sees only that command's answer
    select = b"\x03SELECT 1"
    client.written.clear()
    client.protocol.data_received(frame([select], 0))
    assert bytes(backend.written) == frame([off], 0) + frame([select], 0)
    backend.protocol.data_received(frame([OK], 1) + frame([OK], 1))
    assert bytes(client.written) == frame([OK], 1) and core.deferred == []

    core.scanner.known_status = 0x0002
    assert asked(on)  # another value of the shape
    core.scanner.known_status = -1
    assert asked(off)  # the status not known
    teach(on)
    core.scanner.known_status = 0
    assert asked(on)  # switching autocommit on commits: forwarded at once
    core.scanner.known_status = 0x0002
    assert not asked(on)  # on already: answered
    teach(off)
    session.capabilities = 1 << 23  # CLIENT_SESSION_TRACK
    assert asked(off)
    session.capabilities = 0
    handler.withheld_diagnostics = True
    assert asked(off)
    handler.withheld_diagnostics = False
    core.defer([b"\x03SET NAMES utf8mb4"] * impl.MAX_DEFERRED)
    handler.events.clear()
    client.protocol.data_received(frame([off], 0))
    assert ("command", off) in handler.events  # too many waiting
    backend.protocol.data_received(frame([OK], 1) * (impl.MAX_DEFERRED + 1))
    teach(off, context=None, taught_head=None)  # another session's verdict, no head lent
    session.guard.taught = {fingerprint: core.repeats.pop(fingerprint)}
    assert asked(off) and handler.events[0][0] == "shared_head"
    handler.lends = head
    assert not asked(off) and session.trail.records[-1][1]["q"] == "SET AUTOCOMMIT = 0"


@pytest.mark.parametrize("impl", [compiled, python], ids=["compiled", "twin"])
def test_a_taught_set_names_is_answered_by_the_core_while_texts_read_in_its_set(impl):
    """A SET NAMES the handler answered and taught (``Repeat.names``: its set's codec) is
    answered, recorded and deferred by the core while the session's texts read in that
    set already; one that would change how they read, or make asked settings stale, goes
    to the handler, which follows it (``TextReading.after_statement``)."""
    fingerprints, handler, session, core, client, backend, head = audited(impl)
    names = b"\x03SET NAMES utf8mb4"
    fingerprint = fingerprints.fingerprint_hash(names[1:])
    core.repeats[fingerprint] = impl.Repeat(
        "allow", session.ctx.policy, session.guard.context, text=names[1:].decode(),
        head=head, names="utf-8",
    )  # fmt: skip

    ask = asker(handler, core, client, backend)

    def asked() -> bool:
        client.written.clear()
        return ask(names)

    core.scanner.known_status = 0x0002 | 0x0020
    assert not asked()
    assert bytes(client.written) == frame([b"\x00\x00\x00\x02\x00\x00\x00"], 1)
    assert core.deferred == [names] and backend.written == b""
    assert session.trail.records[-1][1]["q"] == "SET NAMES utf8mb4"
    assert core.counts.cache_hits == 1
    session.reading = TextReading(0, "latin1")  # texts read as cp1252: the SET changes that
    assert asked()
    session.reading = TextReading(0)  # the set not known
    assert asked()
    session.reading = TextReading(0, "utf8mb4")

    async def settings() -> tuple[str, str]:
        return "STRICT_TRANS_TABLES", "utf8mb4"

    assert asyncio.run(session.reading.ambiguity('SELECT "a"', settings)) is None
    assert asked()  # settings asked for: the SET makes them stale
    session.reading = TextReading(0, "utf8mb4")
    core.scanner.known_status = -1
    assert asked()


# MariaDB's OK to SET autocommit=0 with its default trackers, after the status flags.
TRACKED_OFF = bytes.fromhex("11000f0a6175746f636f6d6d6974034f4646")


@pytest.mark.parametrize("impl", [compiled, python], ids=["compiled", "twin"])
def test_a_learned_ok_answers_clients_that_track_session_state(impl):
    """To a client that tracks session state, a taught SET is answered with the server's
    OK learned for its text (``Repeat.tracked``: the flags, SERVER_SESSION_STATE_CHANGED
    and what the trackers said), then checked against the server's own OK when it goes
    with the next command: one that differs unlearns it (``tracked_stale``) and the next
    goes to the handler. Not learned, or a session that changed its trackers: the
    handler. A client that does not track gets the plain OK."""
    fingerprints, handler, session, core, client, backend, head = audited(impl)
    off = b"\x03SET autocommit=0"
    fingerprint = fingerprints.fingerprint_hash(off[1:])
    entry = core.repeats[fingerprint] = impl.Repeat(
        "allow", session.ctx.policy, session.guard.context, text=off[1:].decode(),
        head=head, quiet=True, autocommit=0, tracked=TRACKED_OFF,
    )  # fmt: skip
    asked = asker(handler, core, client, backend)
    select = b"\x03SELECT 1"
    answered = frame([b"\x00\x00\x00\x00\x40\x00\x00" + TRACKED_OFF], 1)

    def then_select(server_ok: bytes) -> bytes:
        client.written.clear()
        handler.events.clear()
        client.protocol.data_received(frame([select], 0))
        assert bytes(backend.written).endswith(frame([off], 0) + frame([select], 0))
        backend.protocol.data_received(frame([server_ok], 1) + frame([OK], 1))
        assert core.deferred == []
        return bytes(client.written)

    session.capabilities = 1 << 23  # CLIENT_SESSION_TRACK
    core.scanner.known_status = 0x0002
    client.written.clear()
    assert not asked(off)
    assert bytes(client.written) == answered and core.deferred == [off]
    assert core.scanner.known_status == 0
    assert session.trail.records[-1][1]["q"] == "SET autocommit=0"
    # the server agrees: nothing to tell, the client gets only the SELECT's answer
    assert then_select(b"\x00\x00\x00\x00\x40\x00\x00" + TRACKED_OFF) == frame([OK], 1)
    assert "tracked_stale" not in [e[0] for e in handler.events]
    assert entry.tracked == TRACKED_OFF
    handler.own_trackers = True
    assert asked(off)
    handler.own_trackers = False
    client.written.clear()
    assert not asked(off)
    assert bytes(client.written) == answered
    # the server's trackers now report the state change too: unlearned, the next asked
    theirs = b"\x00\x00\x00\x00\x40\x00\x00" + TRACKED_OFF[:-1] + b"F\x02\x011"
    assert then_select(theirs) == frame([OK], 1)
    stale = [e for e in handler.events if e[0] == "tracked_stale"]
    assert stale == [("tracked_stale", entry, fingerprint, TRACKED_OFF, theirs)]
    assert entry.tracked is None
    assert asked(off)
    # a client that does not track: the plain OK, whatever was learned
    entry.tracked = TRACKED_OFF
    session.capabilities = 0
    core.scanner.known_status = 0x0002
    client.written.clear()
    assert not asked(off)
    assert bytes(client.written) == frame([b"\x00\x00\x00\x00\x00\x00\x00"], 1)
    # deferred and then taken back by the session task: nothing left to check
    session.capabilities = 1 << 23
    core.take_deferred()
    assert not asked(off)
    assert core.take_deferred() == [off]
    handler.events.clear()
    client.protocol.data_received(frame([select], 0))
    backend.protocol.data_received(frame([OK], 1))
    assert bytes(backend.written).endswith(frame([select], 0)) and entry.tracked == TRACKED_OFF


@pytest.mark.parametrize("impl", [compiled, python], ids=["compiled", "twin"])
def test_the_end_of_a_response_is_kept_when_asked(impl):
    """``keep_end``: the client's last run of the next response, whole, for ``take_kept``,
    once; not for a masked response."""
    handler = Handler([1, 1, 1])
    core, client, backend, _ = attached(impl, handler)
    core.serve()
    core.keep_end = True
    client.protocol.data_received(frame([b"\x03SET autocommit=0"], 0))
    answer = frame([b"\x00\x00\x00\x00\x40\x00\x00" + TRACKED_OFF], 1)
    backend.protocol.data_received(answer[:5])
    backend.protocol.data_received(answer[5:])
    assert core.take_kept() == answer and core.take_kept() is None
    assert not core.keep_end
    client.protocol.data_received(frame([b"\x03SELECT 1"], 0))
    backend.protocol.data_received(frame([OK], 1))
    assert core.take_kept() is None
