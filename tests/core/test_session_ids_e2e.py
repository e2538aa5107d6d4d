"""One id per session (issue 17): the id in the handshake is what CONNECTION_ID() returns,
in any spelling and position and in prepared statements, and what KILL takes; KILL also
takes the backend thread id of a session the caller may kill."""

from __future__ import annotations

import threading
import time

import mysql.connector
import pymysql
import pytest

from mariadb_server import ROOT_PASSWORD
from myguard.audit import iter_records


def connect(proxy, user="alice", password="alice-pw-1"):
    return pymysql.connect(
        host="127.0.0.1", port=proxy.port, user=user, password=password, database="shop",
        autocommit=True,
    )  # fmt: skip


def test_connection_id_is_the_handshake_id_in_every_spelling(proxy):
    conn = connect(proxy)
    session = conn.thread_id()
    with conn.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID(), connection_id ( /* c */ ), 'CONNECTION_ID()'")
        assert cur.fetchone() == (session, session, "CONNECTION_ID()")
        cur.execute("SELECT id FROM customers WHERE id = CONNECTION_ID() - CONNECTION_ID() + 1")
        assert cur.fetchone() == (1,)
    conn.close()


def test_connection_id_keeps_the_builtins_type(proxy, mariadb):
    """What replaces CONNECTION_ID() has its type: the same column metadata as the server's
    own, and the same column in a CREATE TABLE ... SELECT (MariaDB's main.func_hybrid_type)."""
    sql = "SELECT CONNECTION_ID() AS c0, COALESCE(CONNECTION_ID(), CONNECTION_ID()) AS c1"
    direct = pymysql.connect(
        host="127.0.0.1", port=mariadb.port, user="root", password=ROOT_PASSWORD
    )
    conn = connect(proxy)
    shapes = []
    for c in (direct, conn):
        with c.cursor() as cur:
            cur.execute(sql)
            shapes.append(
                [(f.type_code, f.length, f.flags, f.charsetnr) for f in cur._result.fields]
            )
    assert shapes[0] == shapes[1]
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS test.cid_type")
        cur.execute("CREATE TABLE test.cid_type AS " + sql)
        cur.execute("SELECT c0 FROM test.cid_type")
        assert cur.fetchone() == (conn.thread_id(),)
        cur.execute("DROP TABLE test.cid_type")
    with direct.cursor() as cur:
        cur.execute("CREATE TABLE test.cid_type AS " + sql)
        cur.execute("SHOW CREATE TABLE test.cid_type")
        expected = cur.fetchone()[1]
        cur.execute("DROP TABLE test.cid_type")
    assert "`c0` int(10) unsigned NOT NULL" in expected
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE test.cid_type AS " + sql)
        cur.execute("SHOW CREATE TABLE test.cid_type")
        assert cur.fetchone()[1] == expected
        cur.execute("DROP TABLE test.cid_type")
    conn.close()
    direct.close()


NAMED = [
    "SELECT CONNECTION_ID()",
    "SELECT connection_id ( /* c */ ), Connection_Id() AS a, CONNECTION_ID() + 1",
    "SELECT DISTINCT CONCAT('#', CONNECTION_ID()) FROM DUAL WHERE 1",
    "SELECT (SELECT CONNECTION_ID()) UNION SELECT 7",
    "SELECT * FROM (SELECT CONNECTION_ID()) AS d",
    "SELECT /*!CONNECTION_ID()*/",
    "SELECT `id` + CONNECTION_ID() FROM shop.customers LIMIT 1",
]


def _names(conn, sql: str, prepared: bool = False) -> list[str]:
    cur = conn.cursor(prepared=True) if prepared else conn.cursor()
    cur.execute(sql)
    cur.fetchall()
    names = [d[0] for d in cur.description]
    cur.close()
    return names


def test_connection_id_columns_keep_the_servers_names(proxy, mariadb):
    """A column holding CONNECTION_ID() is named as the server names it (drivers read rows
    by name), in text and prepared statements and in CREATE TABLE ... SELECT."""
    direct = mysql.connector.connect(
        host="127.0.0.1", port=mariadb.port, user="root", password=ROOT_PASSWORD, database="shop"
    )
    conn = mysql.connector.connect(
        host="127.0.0.1", port=proxy.port, user="alice", password="alice-pw-1", database="shop"
    )
    for sql in NAMED:
        for prepared in (False, True):
            assert _names(conn, sql, prepared) == _names(direct, sql, prepared), (sql, prepared)
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS test.cid_named")
    cur.execute("CREATE TABLE test.cid_named SELECT CONNECTION_ID(), CONNECTION_ID() + 0")
    cur.execute("SELECT * FROM test.cid_named")
    assert [d[0] for d in cur.description] == ["CONNECTION_ID()", "CONNECTION_ID() + 0"]
    assert cur.fetchall() == [(conn.connection_id, conn.connection_id)]
    cur.execute("DROP TABLE test.cid_named")
    conn.close()
    direct.close()


def test_a_view_keeps_connection_id_as_a_call(proxy, mariadb):
    """The body of a view (or stored program) runs later, for other sessions: myguard's id
    of the session that created it must not be frozen into it."""
    conn = connect(proxy)
    with conn.cursor() as cur:
        cur.execute("CREATE OR REPLACE VIEW test.cid_view AS SELECT CONNECTION_ID() AS c")
    direct = pymysql.connect(
        host="127.0.0.1", port=mariadb.port, user="root", password=ROOT_PASSWORD
    )
    with direct.cursor() as cur:
        cur.execute("SHOW CREATE VIEW test.cid_view")
        body = cur.fetchone()[1]
        cur.execute("DROP VIEW test.cid_view")
    assert "select connection_id() as `c`" in body.lower() and "cast(" not in body.lower()
    conn.close()
    direct.close()


def test_connection_id_in_a_prepared_statement(proxy):
    conn = mysql.connector.connect(
        host="127.0.0.1", port=proxy.port, user="alice", password="alice-pw-1", database="shop"
    )
    cur = conn.cursor(prepared=True)
    cur.execute("SELECT CONNECTION_ID(), %s", (1,))
    assert cur.fetchone() == (conn.connection_id, 1)
    conn.close()


def _sleep_then_kill(proxy, victim, kill_with):
    errors: list[object] = []

    def slow():
        try:
            with victim.cursor() as cur:
                cur.execute("SELECT SLEEP(20)")
                errors.append(cur.fetchone())
        except pymysql.err.MySQLError as exc:
            errors.append(exc)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    killer = connect(proxy)
    with killer.cursor() as cur:
        cur.execute(f"KILL QUERY {kill_with()}")
    t.join(10)
    assert not t.is_alive()
    assert errors and (errors[0] == (1,) or errors[0].args[0] == 1317)
    killer.close()


def test_kill_query_with_the_id_connection_id_returned(proxy):
    victim = connect(proxy)
    with victim.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        (own,) = cur.fetchone()
    _sleep_then_kill(proxy, victim, lambda: own)


def test_kill_query_with_an_arithmetic_id(proxy):
    """The server takes an expression for the id; myguard works out integer arithmetic."""
    victim = connect(proxy)
    _sleep_then_kill(proxy, victim, lambda: f"({victim.thread_id()} + 6) - 2 * 3")
    conn = connect(proxy)
    with conn.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as exc:
        cur.execute("KILL (SELECT id FROM shop.customers LIMIT 1)")
    assert exc.value.args[0] == 1095 and "integer arithmetic" in exc.value.args[1]
    conn.close()


def test_kill_query_with_the_backend_thread_id(proxy, mariadb):
    victim = connect(proxy)

    def backend_thread():  # as an operator sees it in the backend's own process list
        root = pymysql.connect(
            host="127.0.0.1", port=mariadb.port, user="root", password=ROOT_PASSWORD
        )
        with root.cursor() as cur:
            cur.execute(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(20)'"
            )
            (thread,) = cur.fetchone()
        root.close()
        assert thread != victim.thread_id()
        return thread

    _sleep_then_kill(proxy, victim, backend_thread)


def test_nobody_kills_another_users_session_by_its_backend_thread_id(proxy, mariadb):
    alices = connect(proxy)
    t = threading.Thread(target=lambda: alices.cursor().execute("SELECT SLEEP(3)"))
    t.start()
    time.sleep(0.5)
    root = pymysql.connect(host="127.0.0.1", port=mariadb.port, user="root", password=ROOT_PASSWORD)
    with root.cursor() as cur:
        cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(3)'")
        (thread,) = cur.fetchone()
    root.close()
    bob = connect(proxy, "bob", "bob-pw-2")
    with bob.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as err:
        cur.execute(f"KILL {thread}")
    assert err.value.args[0] == 1095 and "not owner" in err.value.args[1]
    t.join(10)


def test_kill_by_backend_thread_id_reaches_another_worker(private_proxy, mariadb):
    p = private_proxy(workers=2)
    conns = [connect(p) for _ in range(8)]
    by_worker: dict[int, pymysql.Connection] = {}
    for conn in conns:
        by_worker.setdefault(conn.thread_id() >> 24, conn)
    if len(by_worker) < 2:
        pytest.skip("the kernel gave every connection to one worker")
    victim, killer = by_worker[0], by_worker[1]
    outcome: list[object] = []

    def sleep() -> None:
        try:
            with victim.cursor() as cur:
                cur.execute("SELECT SLEEP(20)")
                outcome.append(cur.fetchall())
        except pymysql.err.MySQLError as exc:
            outcome.append(exc.args[0])

    t = threading.Thread(target=sleep)
    t.start()
    time.sleep(0.5)
    root = pymysql.connect(host="127.0.0.1", port=mariadb.port, user="root", password=ROOT_PASSWORD)
    with root.cursor() as cur:
        cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO = 'SELECT SLEEP(20)'")
        (thread,) = cur.fetchone()
    root.close()
    started = time.monotonic()
    with killer.cursor() as cur:
        cur.execute(f"KILL QUERY {thread}")
    t.join(10)
    assert not t.is_alive() and time.monotonic() - started < 10
    # The backend ends the killed SLEEP with 1 or with 1317 (interrupted) after its metadata.
    assert outcome in ([((1,),)], [1317])


def _backend_thread_of(mariadb, info: str) -> int:
    root = pymysql.connect(host="127.0.0.1", port=mariadb.port, user="root", password=ROOT_PASSWORD)
    with root.cursor() as cur:
        cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO = %s", (info,))
        (thread,) = cur.fetchone()
    root.close()
    return thread


def _audited(proxy, text: str) -> dict:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for record in iter_records(proxy.audit_dir):
            if record.type == "statement" and record["statement"] == text:
                return record
        time.sleep(0.05)
    raise AssertionError(f"no audit record of {text!r}")


def test_a_kill_that_would_run_on_the_backend_is_refused(proxy, mariadb):
    """Inside a multi-statement text, an executable comment, dynamic SQL, a compound
    statement, a stored program or a COM_STMT_PREPARE, KILL would run on the backend, where
    its id is a backend thread of any user: all refused, and the victim's query runs on."""
    victim = connect(proxy)
    outcome: list[object] = []
    t = threading.Thread(target=lambda: outcome.append(victim.cursor().execute("SELECT SLEEP(4)")))
    t.start()
    time.sleep(0.5)
    thread = _backend_thread_of(mariadb, "SELECT SLEEP(4)")
    bob = pymysql.connect(
        host="127.0.0.1", port=proxy.port, user="bob", password="bob-pw-2", database="test",
        autocommit=True, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS,
    )  # fmt: skip
    forms = [
        f"SELECT 1; KILL {thread}",
        f"KILL {thread}; SELECT SLEEP(0.05)",  # node-mysql2's pool test sends this
        f"DO 1; KILL QUERY {thread}",
        f"/*!KILL {thread}*/",
        f"EXECUTE IMMEDIATE 'KILL {thread}'",
        f"PREPARE s FROM 'KILL {thread}'",
        f"EXECUTE IMMEDIATE CONCAT('KILL ', {thread})",
        f"BEGIN NOT ATOMIC KILL {thread}; END",
        f"CREATE PROCEDURE test.kill_it() KILL {thread}",
    ]
    for sql in forms:
        with bob.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as err:
            cur.execute(sql)
        assert err.value.args[0] == 1095 and "statement of its own" in err.value.args[1], sql
    prepared = mysql.connector.connect(
        host="127.0.0.1", port=proxy.port, user="bob", password="bob-pw-2", use_pure=True
    )
    with pytest.raises(mysql.connector.Error) as err:
        prepared.cursor(prepared=True).execute(f"KILL {thread}")
    assert err.value.errno == 1095
    prepared.close()
    t.join(10)
    assert outcome == [1]  # the SLEEP ran to its end: no KILL reached its thread
    record = _audited(proxy, f"SELECT 1; KILL {thread}")
    assert record["user"] == "bob" and record["error_code"] == 1095
    bob.close()
    victim.close()


def test_a_kill_myguard_runs_is_decided_by_the_rules_and_audited(proxy, private_proxy):
    alice, other = connect(proxy), connect(proxy)
    with alice.cursor() as cur:
        cur.execute(f"KILL CONNECTION {other.thread_id()}")
        with pytest.raises(pymysql.err.MySQLError) as err:
            cur.execute("KILL 424242")
        assert err.value.args[0] == 1094
    killed = _audited(proxy, f"KILL CONNECTION {other.thread_id()}")
    assert killed["decision"] == "allow" and killed.get("error_code") is None
    assert _audited(proxy, "KILL 424242")["error_code"] == 1094
    alice.close()
    # The shipped pack keeps AI agents to reads in production: KILL included.
    prod = private_proxy(environment="production")
    bot, target = connect(prod, "bot", "bot-pw-9"), connect(prod, "bot", "bot-pw-9")
    with bot.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as err:
        cur.execute(f"KILL {target.thread_id()}")
    assert err.value.args[0] == 4700
    with target.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    assert _audited(prod, f"KILL {target.thread_id()}")["decision"] == "block"
    bot.close()
    target.close()


def test_a_kill_a_rule_holds_for_approval_runs_once_approved(private_proxy, tmp_path):
    rules = tmp_path / "kill-rules.toml"
    rules.write_text(
        '[defaults]\naction = "allow"\n\n[[rules]]\nname = "approve-kills"\naction = "approve"\n'
        '[rules.when]\nkinds = ["kill"]\n[rules.approval]\napprover_groups = ["dba"]\n'
    )
    p = private_proxy(rules_file=rules)
    bob, target = connect(p, "bob", "bob-pw-2"), connect(p, "bob", "bob-pw-2")
    done: list[object] = []
    killer = threading.Thread(
        target=lambda: done.append(bob.cursor().execute(f"KILL {target.thread_id()}"))
    )
    killer.start()
    alice = connect(p)
    with alice.cursor() as cur:
        deadline = time.monotonic() + 10
        rows: tuple = ()
        while not rows and time.monotonic() < deadline:
            cur.execute("MYGUARD APPROVALS")
            rows = cur.fetchall()
            time.sleep(0.05)
        assert rows and f"KILL {target.thread_id()}" in rows[-1]
        assert killer.is_alive()  # held
        cur.execute(f"MYGUARD APPROVE {rows[-1][0]} REASON 'stuck session'")
    killer.join(10)
    assert done == [0]
    with pytest.raises(pymysql.err.OperationalError):
        target.cursor().execute("SELECT 1")
    record = _audited(p, f"KILL {target.thread_id()}")
    assert record["decision"] == "approve" and record.get("approval_id")
    alice.close()
    bob.close()


def test_show_explain_for_a_backend_thread_shows_no_other_users_statement(proxy, mariadb):
    """SHOW EXPLAIN FOR a backend thread gave the plan and, in a note, the text of whatever
    statement that thread ran: any user's, on the shared service account."""
    alice = connect(proxy)
    t = threading.Thread(
        target=lambda: alice.cursor().execute("SELECT SLEEP(2), 'a secret literal'")
    )
    t.start()
    time.sleep(0.5)
    thread = _backend_thread_of(mariadb, "SELECT SLEEP(2), 'a secret literal'")
    carol = connect(proxy, "carol", "carol-pw-3")
    for sql in (f"SHOW EXPLAIN FOR {thread}", f"EXPLAIN FORMAT=JSON FOR CONNECTION {thread}"):
        with carol.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as err:
            cur.execute(sql)
        assert err.value.args[0] == 1148 and "other users' statements" in err.value.args[1]
    t.join(10)
    carol.close()
    alice.close()


def test_the_backends_views_of_other_sessions_are_for_dba(proxy):
    """SHOW ENGINE INNODB STATUS and information_schema.INNODB_TRX list what the backend's
    threads run, every user's: the shipped pack leaves them to dba, as the process list."""
    carol, alice = connect(proxy, "carol", "carol-pw-3"), connect(proxy)
    for sql in (
        "SHOW ENGINE INNODB STATUS",
        "SELECT trx_mysql_thread_id, trx_query FROM information_schema.INNODB_TRX",
    ):
        with carol.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as err:
            cur.execute(sql)
        assert err.value.args[0] == 4700 and "for DBAs" in err.value.args[1]
        with alice.cursor() as cur:
            cur.execute(sql)
            cur.fetchall()
    carol.close()
    alice.close()
