"""Every outcome of a held statement leaves the client's connection usable (issue 16).

carol (no group) runs ``CREATE TABLE test.hold_…`` on a production backend, inside a
transaction or in autocommit; the CREATE is held for approval. alice (dba) approves or
denies it from SQL, or it times out, or carol's own second connection cancels it with
``KILL QUERY``. carol gets the result or the ``MYGUARD_APPROVAL_*`` error, and then the
statements she sends next on the same connection must be answered, with the transaction
untouched (README, Approvals: "if denied or timed out, the transaction is untouched and
the client decides to go on or roll back").

The transaction is made visible by an INSERT into ``test.hold_outcome_log`` before the
held statement: a rollback afterwards must remove it, a commit must keep it. An approved
CREATE TABLE commits the open transaction implicitly (MariaDB does that for DDL), so there
the INSERT is committed and ``@@in_transaction`` is 0 afterwards, as it is without myguard.

Clients: PyMySQL (text protocol), the ``mariadb`` command-line client (``--force`` so it
goes on after an error, ``-n`` so each answer is flushed as it comes), and
mysql-connector-python's prepared cursor (server-side PREPARE, the EXECUTE is held).
Every wait has a timeout: a statement that never gets an answer fails the test.
"""

from __future__ import annotations

import itertools
import os
import re
import selectors
import ssl
import subprocess
import threading
import time

import mysql.connector
import pymysql
import pytest
from pymysql.constants import CLIENT

from proxy_process import ProxyProcess

pytestmark = pytest.mark.timeout(60)

RULES = """
[defaults]
action = "allow"

[[rules]]
name = "hold-ddl"
action = "approve"
[rules.when]
kinds = ["create"]
tables = ["test.hold_*"]
[rules.approval]
approver_groups = ["dba"]
hold_seconds = 20

[[rules]]
name = "hold-ddl-briefly"
action = "approve"
[rules.when]
kinds = ["create"]
tables = ["test.brief_*"]
[rules.approval]
approver_groups = ["dba"]
hold_seconds = 1
"""

CAROL = ("carol", "carol-pw-3")
ALICE = ("alice", "alice-pw-1")
# A follow-up statement is answered in milliseconds; this long means it never will be.
ANSWER_TIMEOUT = 3
# From the statement being sent to its outcome (approval, denial, 1 s hold timeout, KILL).
OUTCOME_TIMEOUT = 10
LOG = "test.hold_outcome_log"

OUTCOMES = ["approved", "denied", "timed_out", "killed"]
ERROR_CODES = {"denied": 4711, "timed_out": 4710, "killed": 4712}
ERROR_TOKENS = {
    "denied": "MYGUARD_APPROVAL_DENIED",
    "timed_out": "MYGUARD_APPROVAL_PENDING",
    "killed": "MYGUARD_APPROVAL_CANCELLED",
}
_serial = itertools.count(1)
# "ERROR 4711 (HY000) at line 5: MYGUARD_APPROVAL_DENIED id=3 by=alice reason=not now"
ERROR_LINE = re.compile(r"^ERROR (\d+) \((\w{5})\) at line (\d+): (.*)$", re.M)


@pytest.fixture(scope="module")
def hold_proxy(mariadb, tmp_path_factory):
    base = tmp_path_factory.mktemp("hold-outcomes")
    rules = base / "rules.toml"
    rules.write_text(RULES)
    mariadb.sql(f"CREATE TABLE IF NOT EXISTS {LOG} (tag VARCHAR(64) PRIMARY KEY) ENGINE=InnoDB")
    p = ProxyProcess(base / "p", mariadb, rules_file=rules, environment="production")
    p.start()
    yield p
    p.stop()
    tables = mariadb.sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'test' "
        "AND (table_name LIKE 'hold\\_%' OR table_name LIKE 'brief\\_%')"
    ).split()
    if tables:
        mariadb.sql("DROP TABLE IF EXISTS " + ", ".join(f"test.`{t}`" for t in tables))


class Case:
    """One scenario: its outcome, whether it runs in a transaction, and unique names."""

    def __init__(self, outcome: str, in_txn: bool, client: str, *, insert_held=False) -> None:
        self.outcome = outcome
        self.in_txn = in_txn
        self.insert_held = insert_held  # the INSERT is part of the held text itself
        n = next(_serial)
        prefix = "brief" if outcome == "timed_out" else "hold"
        self.table = f"{prefix}_{client}_{outcome}_{'txn' if in_txn else 'auto'}_{n}_{os.getpid()}"
        self.create = f"CREATE TABLE test.{self.table} (id INT)"
        self.tag = self.table
        # After the outcome: commit what the transaction did, or roll it back.
        self.finish = "COMMIT" if outcome == "timed_out" else "ROLLBACK"

    def in_transaction_after(self) -> int:
        # An approved CREATE TABLE runs, and DDL commits the open transaction implicitly.
        return 1 if self.in_txn and self.outcome != "approved" else 0

    def tag_kept(self) -> bool:
        """Whether the INSERT made before the held statement is in the table at the end."""
        if self.insert_held:
            return self.outcome == "approved"
        if not self.in_txn or self.outcome == "approved":
            return True  # autocommit, or committed by the DDL
        return self.finish == "COMMIT"


def check_effects(mariadb, case: Case) -> None:
    exists = mariadb.sql(
        "SELECT COUNT(*) FROM information_schema.tables "
        f"WHERE table_schema = 'test' AND table_name = '{case.table}'"
    ).strip()
    assert exists == ("1" if case.outcome == "approved" else "0"), "held CREATE ran or not"
    kept = mariadb.sql(f"SELECT COUNT(*) FROM {LOG} WHERE tag = '{case.tag}'").strip()
    assert kept == ("1" if case.tag_kept() else "0"), "the transaction was not left as it was"


# -- the approver's side ---------------------------------------------------------------------


def connect(proxy, who, **kw):
    user, password = who
    return pymysql.connect(
        host="127.0.0.1",
        port=proxy.port,
        user=user,
        password=password,
        database="test",
        autocommit=True,
        connect_timeout=ANSWER_TIMEOUT,
        read_timeout=OUTCOME_TIMEOUT,
        write_timeout=ANSWER_TIMEOUT,
        **kw,
    )


def pending_request(approver, table: str, timeout: float = OUTCOME_TIMEOUT) -> int:
    """The id of the pending request whose statement creates ``table``."""
    deadline = time.monotonic() + timeout
    with approver.cursor() as cur:
        while time.monotonic() < deadline:
            cur.execute("MYGUARD APPROVALS")
            for row in cur.fetchall():
                if row[1] == "pending" and row[2] == "carol" and table in row[5]:
                    return int(row[0])
            time.sleep(0.05)
    raise AssertionError(f"no pending approval for {table} within {timeout} s")


def decide(proxy, case: Case, carol_connection_id: int) -> None:
    """Bring about ``case.outcome`` for carol's held statement (a timeout needs nothing)."""
    if case.outcome == "timed_out":
        return
    alice = connect(proxy, ALICE)
    try:
        request_id = pending_request(alice, case.table)
        with alice.cursor() as cur:
            if case.outcome == "approved":
                cur.execute(f"MYGUARD APPROVE {request_id} REASON 'ok'")
            elif case.outcome == "denied":
                cur.execute(f"MYGUARD DENY {request_id} REASON 'not now'")
    finally:
        alice.close()
    if case.outcome == "killed":
        other = connect(proxy, CAROL)  # a user may kill only her own sessions
        try:
            with other.cursor() as cur:
                cur.execute(f"KILL QUERY {carol_connection_id}")
        finally:
            other.close()


class Background(threading.Thread):
    """Runs ``fn`` and keeps its result or error; ``outcome()`` waits with a timeout."""

    def __init__(self, fn) -> None:
        super().__init__(daemon=True)
        self.fn = fn
        self.result = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn()
        except BaseException as exc:  # noqa: BLE001 - reported by outcome()
            self.error = exc

    def outcome(self, timeout: float = OUTCOME_TIMEOUT):
        self.join(timeout)
        assert not self.is_alive(), f"the held statement got no answer within {timeout} s"
        return self.result, self.error


def check_error(case: Case, error: BaseException | None, code: int, message: str) -> None:
    if case.outcome == "approved":
        assert error is None, f"approved statement failed: {error!r}"
        return
    assert error is not None, "the held statement was not refused"
    assert code == ERROR_CODES[case.outcome], (code, message)
    assert message.startswith(ERROR_TOKENS[case.outcome]), message


# -- PyMySQL, text protocol ------------------------------------------------------------------


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
@pytest.mark.parametrize("in_txn", [True, False], ids=["txn", "autocommit"])
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_pymysql_connection_usable_after_outcome(hold_proxy, mariadb, outcome, in_txn, tls):
    case = Case(outcome, in_txn, "py")
    options = {"ssl": {"ca": str(hold_proxy.cert)}} if tls else {"ssl_disabled": True}
    carol = connect(hold_proxy, CAROL, **options)
    carol._read_timeout = ANSWER_TIMEOUT
    assert isinstance(carol._sock, ssl.SSLSocket) == tls
    try:
        cur = carol.cursor()
        if in_txn:
            cur.execute("BEGIN")
        cur.execute(f"INSERT INTO {LOG} VALUES ('{case.tag}')")
        cur.execute("SELECT @@in_transaction")
        assert cur.fetchone() == (int(in_txn),)

        carol._read_timeout = OUTCOME_TIMEOUT
        held = Background(lambda: cur.execute(case.create))
        held.start()
        decide(hold_proxy, case, carol.thread_id())
        _, error = held.outcome()
        code, message = error.args if error is not None else (0, "")
        check_error(case, error, code, message)

        carol._read_timeout = ANSWER_TIMEOUT
        cur.execute("SELECT @@in_transaction")
        assert cur.fetchone() == (case.in_transaction_after(),)
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
        cur.execute(case.finish)
        cur.execute("SELECT @@in_transaction")
        assert cur.fetchone() == (0,)
    finally:
        carol.close()
    check_effects(mariadb, case)


# -- the mariadb command-line client ---------------------------------------------------------


def cli_script(case: Case) -> str:
    # The client's own status command prints the connection id of the handshake, which is
    # the id KILL takes; CONNECTION_ID() would be the backend's.
    lines = ["status;"]
    if case.in_txn:
        lines.append("BEGIN;")
    lines += [
        f"INSERT INTO {LOG} VALUES ('{case.tag}');",
        "SELECT 'before', @@in_transaction;",
        case.create + ";",
        "SELECT 'after', @@in_transaction;",
        "SELECT 'one', 1;",
        case.finish + ";",
        "SELECT 'finished', @@in_transaction;",
    ]
    return "\n".join(lines) + "\n"


def read_line(proc: subprocess.Popen, timeout: float) -> bytes:
    """One line of the client's stdout, without blocking past ``timeout``."""
    fd = proc.stdout.fileno()
    line = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                raise AssertionError(f"the mariadb client printed no line within {timeout} s")
            chunk = os.read(fd, 1)
            if not chunk:
                raise AssertionError(f"the mariadb client ended early: {line!r}")
            line += chunk
    return line


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
@pytest.mark.parametrize("in_txn", [True, False], ids=["txn", "autocommit"])
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_mariadb_cli_connection_usable_after_outcome(hold_proxy, mariadb, outcome, in_txn, tls):
    case = Case(outcome, in_txn, "cli")
    tls = ["--ssl", "--ssl-verify-server-cert=0"] if tls else ["--skip-ssl"]
    user, password = CAROL
    proc = subprocess.Popen(
        [
            "mariadb",
            "--no-defaults",
            "--protocol=TCP",
            "-h127.0.0.1",
            f"-P{hold_proxy.port}",
            f"-u{user}",
            f"-p{password}",
            *tls,
            "--connect-timeout=5",
            "-N",
            "-B",
            "-n",
            "--force",
            "test",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        proc.stdin.write(cli_script(case).encode())
        proc.stdin.close()
        proc.stdin = None  # all sent; communicate() must not flush it again
        while not (line := read_line(proc, OUTCOME_TIMEOUT)).startswith(b"Connection id:"):
            pass
        decide(hold_proxy, case, int(line.split(b":")[1]))
        try:
            rest, stderr = proc.communicate(timeout=2 + ANSWER_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            rest, stderr = proc.communicate()
            pytest.fail(
                "the mariadb client got no answer after the held statement's outcome; "
                f"stdout so far {rest!r}, stderr {stderr!r}"
            )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    cipher = re.search(rb"^SSL:\s+(.*)$", rest, re.M).group(1)
    assert (
        cipher.startswith(b"Cipher in use is") if tls != ["--skip-ssl"] else cipher == b"Not in use"
    )
    labels = ("before", "after", "one", "finished")
    lines = [line for line in rest.decode().splitlines() if line.startswith(labels)]
    assert lines == [
        f"before\t{int(in_txn)}",
        f"after\t{case.in_transaction_after()}",
        "one\t1",
        "finished\t0",
    ], stderr
    # With --force the client echoes the failed statement before its ERROR line.
    errors = ERROR_LINE.findall(stderr.decode())
    if outcome == "approved":
        assert errors == [], stderr
    else:
        line = 5 if in_txn else 4
        assert len(errors) == 1, stderr
        code, sqlstate, at, message = errors[0]
        assert (int(code), sqlstate, int(at)) == (ERROR_CODES[outcome], "HY000", line), stderr
        assert message.startswith(ERROR_TOKENS[outcome]), stderr
    assert proc.returncode == 0, stderr  # --force: errors do not end the script
    check_effects(mariadb, case)


# -- server-side prepared statements (mysql-connector-python, binary protocol) ---------------


@pytest.mark.parametrize("in_txn", [True, False], ids=["txn", "autocommit"])
@pytest.mark.parametrize("outcome", OUTCOMES)
def test_prepared_execute_connection_usable_after_outcome(hold_proxy, mariadb, outcome, in_txn):
    case = Case(outcome, in_txn, "ps")
    user, password = CAROL
    carol = mysql.connector.connect(
        host="127.0.0.1",
        port=hold_proxy.port,
        user=user,
        password=password,
        database="test",
        use_pure=True,
        autocommit=True,
        ssl_disabled=True,
        connection_timeout=ANSWER_TIMEOUT,
        read_timeout=ANSWER_TIMEOUT,
        write_timeout=ANSWER_TIMEOUT,
    )
    try:
        text = carol.cursor()
        prepared = carol.cursor(prepared=True)
        if in_txn:
            text.execute("BEGIN")
        prepared.execute(f"INSERT INTO {LOG} VALUES (%s)", (case.tag,))
        prepared.execute("SELECT @@in_transaction")
        assert prepared.fetchall() == [(int(in_txn),)]

        held_cursor = carol.cursor(prepared=True)
        carol.read_timeout = OUTCOME_TIMEOUT
        held = Background(lambda: held_cursor.execute(case.create))
        held.start()
        decide(hold_proxy, case, carol.connection_id)
        _, error = held.outcome()
        code, message = (error.errno, error.msg) if error is not None else (0, "")
        check_error(case, error, code, message)

        carol.read_timeout = ANSWER_TIMEOUT
        prepared.execute("SELECT @@in_transaction")
        assert prepared.fetchall() == [(case.in_transaction_after(),)]
        text.execute("SELECT 1")
        assert text.fetchall() == [(1,)]
        text.execute(case.finish)
        prepared.execute("SELECT @@in_transaction")
        assert prepared.fetchall() == [(0,)]
    finally:
        carol.close()
    check_effects(mariadb, case)


# -- the words as one COM_QUERY (multi-statements) -----------------------------------


@pytest.mark.parametrize("outcome", OUTCOMES)
def test_multi_statement_query_connection_usable_after_outcome(hold_proxy, mariadb, outcome):
    """``BEGIN; SELECT @@in_transaction; CREATE TABLE ...`` sent in one COM_QUERY: the text
    is held as a whole, so nothing of it runs unless approved."""
    case = Case(outcome, False, "multi", insert_held=True)
    carol = connect(hold_proxy, CAROL, client_flag=CLIENT.MULTI_STATEMENTS)
    try:
        cur = carol.cursor()
        sql = f"BEGIN; INSERT INTO {LOG} VALUES ('{case.tag}'); SELECT @@in_transaction; {case.create}"

        def run():
            cur.execute(sql)
            sets = []
            while True:
                sets.append(list(cur.fetchall()))
                if not cur.nextset():
                    return sets

        held = Background(run)
        held.start()
        decide(hold_proxy, case, carol.thread_id())
        sets, error = held.outcome()
        code, message = error.args if error is not None else (0, "")
        check_error(case, error, code, message)
        if outcome == "approved":
            assert sets == [[], [], [(1,)], []]

        carol._read_timeout = ANSWER_TIMEOUT
        cur.execute("SELECT @@in_transaction")
        assert cur.fetchone() == (0,)
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    finally:
        carol.close()
    check_effects(mariadb, case)


def test_rerun_on_the_same_connection_after_a_timed_out_hold_is_approved(hold_proxy, mariadb):
    """README: after a timeout, running the same statement once approved runs it; here on
    the connection that waited, whose transaction stayed open meanwhile."""
    case = Case("timed_out", True, "rerun")
    carol = connect(hold_proxy, CAROL, ssl_disabled=True)
    try:
        cur = carol.cursor()
        cur.execute("BEGIN")
        cur.execute(f"INSERT INTO {LOG} VALUES ('{case.tag}')")
        with pytest.raises(pymysql.err.MySQLError) as held:
            cur.execute(case.create)  # held for 1 s, then 4710
        assert held.value.args[0] == 4710
        request_id = int(held.value.args[1].split("id=")[1].split()[0])
        carol._read_timeout = ANSWER_TIMEOUT
        cur.execute("SELECT @@in_transaction")
        assert cur.fetchone() == (1,)
        alice = connect(hold_proxy, ALICE)
        with alice.cursor() as a:
            a.execute(f"MYGUARD APPROVE {request_id}")
        alice.close()
        cur.execute(case.create)  # approved meanwhile: runs, and commits the transaction
        cur.execute("SELECT @@in_transaction")
        assert cur.fetchone() == (0,)
    finally:
        carol.close()
    case.outcome = "approved"  # what the database shows: the table, and the INSERT committed
    check_effects(mariadb, case)


def test_a_backend_connection_lost_during_a_hold_is_reported(hold_proxy, mariadb):
    """The backend connection of a session whose statement is held dies meanwhile (a
    DBA's KILL, a restart, wait_timeout). Once approved, the client gets myguard's
    lost-connection error at once: the statement is not forwarded into the closed socket
    to wait for an answer that never comes."""
    case = Case("approved", False, "lost")
    carol = connect(hold_proxy, CAROL)
    carol._read_timeout = 3 * OUTCOME_TIMEOUT  # a hang shows as no answer in outcome()
    try:
        cur = carol.cursor()
        cur.execute("SELECT @@pseudo_thread_id")
        (backend_thread,) = cur.fetchone()
        held = Background(lambda: cur.execute(case.create))
        held.start()
        alice = connect(hold_proxy, ALICE)
        try:
            request_id = pending_request(alice, case.table)
            mariadb.sql(f"KILL CONNECTION {backend_thread}")
            time.sleep(0.5)  # the closed socket reaches myguard
            with alice.cursor() as approve:
                approve.execute(f"MYGUARD APPROVE {request_id}")
        finally:
            alice.close()
        _, error = held.outcome()
    finally:
        carol.close()
    assert error is not None, "the approved statement ran on a killed connection"
    code, message = error.args
    assert code == 2013 and "lost connection to backend" in message, error.args
    assert "backend_lost" in hold_proxy.log()
