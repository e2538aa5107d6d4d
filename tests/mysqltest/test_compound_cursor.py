"""The smallest reproduction of issue 15's hang, at packet level.

A compound statement that selects while a stored-procedure cursor is open, prepared and
executed (as ``mariadb-test --ps-protocol`` and ``--cursor-protocol`` send it). Captured
straight from MariaDB 10.11, the COM_STMT_EXECUTE response is

    without CLIENT_DEPRECATE_EOF (libmariadb, so mariadb-test, never sends it):
      column count 1, column definition,
      EOF  status CURSOR_EXISTS|MORE_RESULTS_EXISTS|AUTOCOMMIT|NO_INDEX_USED (0x6a),
      binary row,
      EOF  status 0x6a,
      OK   status AUTOCOMMIT|NO_INDEX_USED (0x22)
    with CLIENT_DEPRECATE_EOF:
      column count 1, column definition, binary row, OK(0xFE) status 0x6a, OK status 0x22

whether or not the EXECUTE asks for a read-only cursor (MariaDB opens protocol cursors only
for a single SELECT; libmariadb asks for one only when PREPARE reported columns, which a
compound statement never does). CURSOR_EXISTS here describes the procedure's own open
cursor, not a protocol cursor: no COM_STMT_FETCH follows, the rows come inline. The
PREPARE response is a single PREPARE_OK (0 columns, 0 parameters) in every mode.

A protocol cursor (``SELECT a FROM t1`` executed with CURSOR_TYPE_READ_ONLY) answers
column count, definitions, then EOF / OK(0xFE) with CURSOR_EXISTS and *without*
MORE_RESULTS_EXISTS, and nothing more until COM_STMT_FETCH; that case is checked too, so
a fix for the first cannot break the second.

Every exchange goes first straight to MariaDB, to learn the packets, then through myguard,
which must deliver the same packets within a deadline and nothing more.
"""

from __future__ import annotations

import time

import packet_trace as pt
import pytest

from mariadb_server import SERVICE_PASSWORD, SERVICE_USER, MariaDBServer
from myguard._fast import load, twin

COMPOUND = (
    "BEGIN NOT ATOMIC DECLARE va INT; "
    "DECLARE cur CURSOR(amin INT) FOR SELECT a FROM t1 WHERE a>amin ORDER BY a; "
    "OPEN cur(1 IN (SELECT * FROM t1)); FETCH cur INTO va; SELECT va; CLOSE cur; END"
)
SELECT = "SELECT a FROM t1 ORDER BY a"
DEADLINE = 3.0  # directly the whole exchange takes milliseconds
QUIET = 0.3  # a direct response is complete after this long without data

# Both EOF modes; the hang was in the classic one, which mariadb-test uses.
EOF_MODES = [pytest.param(True, id="deprecate_eof"), pytest.param(False, id="classic_eof")]


@pytest.fixture()
def t1(clean_server: MariaDBServer) -> MariaDBServer:
    clean_server.sql("CREATE TABLE t1 (a INT); INSERT INTO t1 VALUES (1), (2), (3);", "test")
    return clean_server


def exchange(port: int, user: str, password: str, deprecate_eof: bool, steps, counts=None):
    """Send each step's packet and read its response: ``counts[i]`` packets by the
    deadline, or (``counts`` None) whatever arrives until a quiet period."""
    client = pt.connect(port, user, password, "test", deprecate_eof=deprecate_eof)
    responses: list[list[pt.Packet]] = []
    try:
        for i, step in enumerate(steps):
            payload = step(responses)
            pt.send(client, payload)
            count = None if counts is None else counts[i]
            responses.append(pt.read_packets(client, count, QUIET, time.monotonic() + DEADLINE))
        if counts is not None:
            extra = pt.read_packets(client, None, QUIET, time.monotonic() + DEADLINE)
            assert not extra, f"unexpected packets: {[p.describe() for p in extra]}"
    finally:
        client.close()
    return responses


def through_and_direct(proxy, mariadb: MariaDBServer, deprecate_eof: bool, steps):
    direct = exchange(mariadb.port, SERVICE_USER, SERVICE_PASSWORD, deprecate_eof, steps)
    try:
        through = exchange(
            proxy.port, "alice", "alice-pw-1", deprecate_eof, steps, [len(r) for r in direct]
        )
    except TimeoutError as exc:
        expected = [[p.describe() for p in r] for r in direct]
        pytest.fail(f"myguard did not deliver the response: {exc}\nexpected: {expected}")
    return direct, through


def shape(packets: list[pt.Packet], *, prepare_ok: bool = False) -> list[tuple]:
    """What must match: sequence ids and payloads (a PREPARE_OK's statement id aside)."""
    out = []
    for i, p in enumerate(packets):
        payload = p.payload
        if prepare_ok and i == 0:
            payload = payload[:1] + b"<id>" + payload[5:]
        out.append((p.seq, payload))
    return out


def prepare_step(sql: str):
    return lambda responses: pt.prepare(sql)


def execute_step(flags: int):
    return lambda responses: pt.execute(pt.stmt_id(responses[0][0]), flags)


def fetch_step(rows: int):
    return lambda responses: pt.fetch(pt.stmt_id(responses[0][0]), rows)


def query_step(sql: str):
    return lambda responses: b"\x03" + sql.encode()


@pytest.mark.parametrize("flags", [pt.CURSOR_TYPE_NO_CURSOR, pt.CURSOR_TYPE_READ_ONLY])
@pytest.mark.parametrize("deprecate_eof", EOF_MODES)
def test_compound_statement_with_open_cursor(proxy, t1, deprecate_eof: bool, flags: int):
    steps = [prepare_step(COMPOUND), execute_step(flags), query_step("SELECT 42")]
    direct, through = through_and_direct(proxy, t1, deprecate_eof, steps)
    # What the server sent: the facts this reproduction rests on.
    execute = direct[1]
    statuses = [p.status for p in execute if p.kind() in ("EOF", "OK(0xFE)", "OK")]
    more_cursor = 0x0008 | 0x0040
    assert [s & more_cursor for s in statuses] == (
        [more_cursor, 0] if deprecate_eof else [more_cursor, more_cursor, 0]
    ), [p.describe() for p in execute]
    assert len(direct[0]) == 1 and direct[0][0].payload[5:9] == b"\0\0\0\0"  # 0 cols/params
    # Through myguard: every packet, in step, and the connection still usable after.
    assert shape(through[0], prepare_ok=True) == shape(direct[0], prepare_ok=True)
    assert shape(through[1]) == shape(direct[1])
    assert shape(through[2]) == shape(direct[2])


@pytest.mark.parametrize("deprecate_eof", EOF_MODES)
def test_protocol_cursor_still_works(proxy, t1, deprecate_eof: bool):
    """A real COM_STMT_EXECUTE cursor: metadata, then rows only through COM_STMT_FETCH."""
    steps = [
        prepare_step(SELECT),
        execute_step(pt.CURSOR_TYPE_READ_ONLY),
        fetch_step(2),
        fetch_step(2),
        query_step("SELECT 42"),
    ]
    direct, through = through_and_direct(proxy, t1, deprecate_eof, steps)
    opened = direct[1][-1]
    assert opened.status & 0x0040 and not opened.status & 0x0008, opened.describe()
    assert shape(through[0], prepare_ok=True) == shape(direct[0], prepare_ok=True)
    for got, want in zip(through[1:], direct[1:], strict=True):
        assert shape(got) == shape(want)


@pytest.mark.parametrize("implementation", ["compiled", "twin"])
@pytest.mark.parametrize("deprecate_eof", EOF_MODES)
def test_scanner_consumes_whole_response(t1, deprecate_eof: bool, implementation: str):
    """The response scanner alone, fed the EXECUTE response captured from MariaDB."""
    scan = load("resultscan") if implementation == "compiled" else twin("resultscan")
    (_, execute) = exchange(
        t1.port,
        SERVICE_USER,
        SERVICE_PASSWORD,
        deprecate_eof,
        [prepare_step(COMPOUND), execute_step(pt.CURSOR_TYPE_NO_CURSOR)],
    )
    wire = b"".join(len(p.payload).to_bytes(3, "little") + bytes([p.seq]) + p.payload
                    for p in execute)  # fmt: skip
    scanner = scan.ResponseScanner(deprecate_eof)
    scanner.start(scan.RESPONSE_EXECUTE, stream_rows=True)
    used = scanner.scan(wire)
    assert (used, scanner.done, scanner.rows) == (len(wire), True, 1), (
        f"scanner stopped after {used} of {len(wire)} bytes, done={scanner.done}, "
        f"status=0x{scanner.status:04x}, rows={scanner.rows}, last_seq={scanner.last_seq}"
    )
    assert scanner.status & 0x0008 == 0
