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


def _one_in_each_worker(
    p,
) -> tuple[list[pymysql.Connection], pymysql.Connection, pymysql.Connection]:
    """Eight connections to a two-worker myguard, and one of them in each worker."""
    conns = [connect(p) for _ in range(8)]
    by_worker: dict[int, pymysql.Connection] = {}
    for conn in conns:
        by_worker.setdefault(conn.thread_id() >> 24, conn)
    if len(by_worker) < 2:
        pytest.skip("the kernel gave every connection to one worker")
    return conns, by_worker[0], by_worker[1]


def test_kill_by_backend_thread_id_reaches_another_worker(private_proxy, mariadb):
    _, victim, killer = _one_in_each_worker(private_proxy(workers=2))
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
    # Analyses are cached by shape, literals erased: a harmless statement of the same shape
    # sent first must not let its text stand for the KILL's. (carol: no masking, which
    # refuses opaque statements before this check.)
    carol = connect(proxy, "carol", "carol-pw-3")
    pairs = [
        ("EXECUTE IMMEDIATE CONCAT('SELECT ', 1)", f"EXECUTE IMMEDIATE CONCAT('KILL ', {thread})"),
        (
            "BEGIN NOT ATOMIC EXECUTE IMMEDIATE 'SELECT 1'; END",
            f"BEGIN NOT ATOMIC EXECUTE IMMEDIATE 'KILL {thread}'; END",
        ),
        (
            "EXECUTE IMMEDIATE CONCAT('SELECT ', 2)",
            f"EXECUTE IMMEDIATE CONCAT('SHOW EXPLAIN FOR ', {thread})",
        ),
    ]
    for harmless, sql in pairs:
        with carol.cursor() as cur:
            cur.execute(harmless)
            cur.fetchall()
            with pytest.raises(pymysql.err.MySQLError) as err:
                cur.execute(sql)
        assert err.value.args[0] in (1095, 1148) and "myguard" in err.value.args[1], sql
    carol.close()
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


def test_a_session_that_kills_itself_gets_the_servers_answer(proxy, mariadb):
    """KILL of a session's own statement or connection: the KILL itself is what was killed
    (1317, 1927 and the connection closes), as the server answers it."""
    answers = {}
    for target, port, user, password in (
        ("direct", mariadb.port, "root", ROOT_PASSWORD),
        ("myguard", proxy.port, "alice", "alice-pw-1"),
    ):
        conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password)
        query = _refused(conn, "KILL QUERY CONNECTION_ID()")
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
        killed = _refused(conn, "KILL CONNECTION_ID()")
        with pytest.raises(pymysql.err.OperationalError):
            conn.cursor().execute("SELECT 1")
        answers[target] = (query[0], killed[0])
    assert answers["myguard"] == answers["direct"] == (1317, 1927)
    assert _audited(proxy, "KILL QUERY CONNECTION_ID()")["error_code"] == 1317
    assert _audited(proxy, "KILL CONNECTION_ID()")["error_code"] == 1927


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
        rows = _pending_approvals(cur)
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


def _running(conn, sql: str) -> threading.Thread:
    """``sql`` running on ``conn`` in a thread, once it has had time to start."""
    t = threading.Thread(target=lambda: conn.cursor().execute(sql))
    t.start()
    time.sleep(0.5)
    return t


def test_a_backend_lost_while_a_statement_is_held_is_reported_as_lost(
    private_proxy, mariadb, tmp_path
):
    """The backend connection dies while the session task holds the sockets (a statement
    held for approval): once approved, the client is told the backend was lost (2013), not
    an internal error, and other sessions go on."""
    rules = tmp_path / "hold-rules.toml"
    rules.write_text(
        '[defaults]\naction = "allow"\n\n[[rules]]\nname = "hold-orders"\naction = "approve"\n'
        '[rules.when]\ntables = ["shop.orders"]\n[rules.approval]\napprover_groups = ["dba"]\n'
    )
    p = private_proxy(rules_file=rules)
    bob = connect(p, "bob", "bob-pw-2")
    with bob.cursor() as cur:
        cur.execute("SELECT @@pseudo_thread_id")
        thread = cur.fetchone()[0]
    errors: list[object] = []

    def held() -> None:
        try:
            bob.cursor().execute("SELECT COUNT(*) FROM shop.orders")
        except pymysql.err.MySQLError as exc:
            errors.append(exc.args)

    waiter = threading.Thread(target=held)
    waiter.start()
    alice = connect(p)
    with alice.cursor() as cur:
        rows = _pending_approvals(cur)
        assert rows and waiter.is_alive()
        mariadb.sql(f"KILL {thread}")
        time.sleep(0.2)
        cur.execute(f"MYGUARD APPROVE {rows[-1][0]} REASON 'test'")
    waiter.join(10)
    assert errors and errors[0][0] == 2013 and "lost connection to backend" in errors[0][1]
    assert "4692" not in p.log() and "internal error" not in p.log()
    with alice.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    alice.close()
    bob.close()


def _pending_approvals(cur) -> tuple:
    """The approval requests pending, once there is one (up to 10 s)."""
    deadline = time.monotonic() + 10
    rows: tuple = ()
    while not rows and time.monotonic() < deadline:
        cur.execute("MYGUARD APPROVALS")
        rows = cur.fetchall()
        time.sleep(0.05)
    return rows


def _refused(conn, sql: str) -> tuple[int, str]:
    with conn.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as err:
        cur.execute(sql)
    return err.value.args


def test_show_explain_for_takes_a_session_id_of_this_proxy(proxy):
    """SHOW EXPLAIN FOR and EXPLAIN FOR CONNECTION name a session as the process list shows
    it: myguard sends them with that session's backend thread. The text the client sent is
    what the audit trail records."""
    # A SHOW EXPLAIN wakes the SLEEP it finds running: one short one per row keeps it going.
    sql = "SELECT SLEEP(0.1), 'a literal' FROM seq_1_to_30"
    runner, alice = connect(proxy), connect(proxy)
    t = _running(runner, sql)
    session = runner.thread_id()
    with alice.cursor() as cur:
        for spelling in (
            f"SHOW EXPLAIN FOR {session}",
            f"SHOW /* c */ EXPLAIN FOR ({session})",
            f"DESC FOR CONNECTION {session}",
        ):
            cur.execute(spelling)
            (plan,) = cur.fetchall()
            assert cur.description[0][0] == "id" and plan[2] == "seq_1_to_30"
            cur.execute("SHOW WARNINGS")  # the server's note holds the statement's text
            assert any("'a literal'" in message for _, _, message in cur.fetchall())
        cur.execute(f"EXPLAIN FORMAT=JSON FOR CONNECTION {session}")
        assert '"table_name": "seq_1_to_30"' in cur.fetchone()[0]
    assert _audited(proxy, f"SHOW EXPLAIN FOR {session}")["decision"] == "allow"
    t.join(10)
    # Ids are this proxy's sessions' (a backend thread id reaches none but by chance).
    t = _running(runner, "SELECT SLEEP(2)")
    unknown = session + 100_000
    assert _refused(alice, f"SHOW EXPLAIN FOR {unknown}") == (1094, f"Unknown thread id: {unknown}")
    code, message = _refused(alice, f"SHOW EXPLAIN FOR {session} + 0")
    assert code == 1204 and "constant expressions" in message
    assert _refused(alice, f"SHOW EXPLAIN FOR {session}; SELECT 1")[0] == 1148
    t.join(10)
    code, message = _refused(alice, f"SHOW EXPLAIN FOR {session}")  # idle now
    assert code == 1933 and "query plan" in message
    runner.close()
    alice.close()


def test_show_explain_for_another_users_session_is_for_the_process_list_groups(proxy):
    """A user explains their own sessions; the process list groups (dba) explain everyone's,
    except a session with masking, whose plan would show its literals."""
    alice, carol, carols_other, bob = (
        connect(proxy),
        connect(proxy, "carol", "carol-pw-3"),
        connect(proxy, "carol", "carol-pw-3"),
        connect(proxy, "bob", "bob-pw-2"),
    )
    t = _running(alice, "SELECT SLEEP(2)")
    code, message = _refused(carol, f"SHOW EXPLAIN FOR {alice.thread_id()}")
    assert code == 1227 and "process_list_groups" in message
    t.join(10)
    t = _running(carols_other, "SELECT SLEEP(0.1) FROM seq_1_to_20")
    for viewer in (carol, alice):
        with viewer.cursor() as cur:
            cur.execute(f"SHOW EXPLAIN FOR {carols_other.thread_id()}")
            assert cur.fetchall()
    t.join(10)
    t = _running(bob, "SELECT SLEEP(2), 'bob@example.com'")
    code, message = _refused(alice, f"SHOW EXPLAIN FOR {bob.thread_id()}")
    assert code == 1148 and "has masking" in message
    t.join(10)
    for conn in (alice, carol, carols_other, bob):
        conn.close()


def test_show_explain_for_a_session_of_another_worker(private_proxy):
    conns, runner, asker = _one_in_each_worker(private_proxy(workers=2))
    t = _running(runner, "SELECT SLEEP(0.1) FROM seq_1_to_20")
    with asker.cursor() as cur:
        cur.execute(f"SHOW EXPLAIN FOR {runner.thread_id()}")
        assert cur.fetchone()[2] == "seq_1_to_20"
    assert _refused(asker, f"SHOW EXPLAIN FOR {runner.thread_id() + 1000}")[0] == 1094
    t.join(10)
    for conn in conns:
        conn.close()


def test_the_backends_views_of_other_sessions_are_for_dba(proxy):
    """SHOW ENGINE INNODB STATUS and information_schema.INNODB_TRX list what the backend's
    threads run, every user's: left to process_list_groups (dba), as the process list."""
    carol, alice = connect(proxy, "carol", "carol-pw-3"), connect(proxy)
    for sql in (
        "SHOW ENGINE INNODB STATUS",
        "SELECT trx_mysql_thread_id, trx_query FROM information_schema.INNODB_TRX",
    ):
        code, message = _refused(carol, sql)
        assert code == 1227 and "process_list_groups" in message
        assert _audited(proxy, sql)["error_code"] == 1227
        with alice.cursor() as cur:
            cur.execute(sql)
            cur.fetchall()
    carol.close()
    alice.close()


def test_the_backends_views_of_other_sessions_whatever_the_rules_say(
    private_proxy, mariadb, tmp_path
):
    """A site's own rules file that allows everything does not open them: bob's literal
    in the backend's general log (all statements of the shared account) stays out of
    carol's sight, also through dynamic SQL and a stored procedure; alice (dba) reads it."""
    rules = tmp_path / "allow-all.toml"
    rules.write_text('[defaults]\naction = "allow"\n')
    p = private_proxy(rules_file=rules, environment="development")
    bob, carol, alice = (
        connect(p, "bob", "bob-pw-2"),
        connect(p, "carol", "carol-pw-3"),
        connect(p),
    )
    log = "SELECT argument FROM mysql.general_log"
    mariadb.sql("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = ON;")
    try:
        with bob.cursor() as cur:
            cur.execute("SELECT 'bob-secret-4711'")
            cur.fetchall()
        for sql in (
            log,
            "SELECT * FROM performance_schema.events_statements_history",
            "SELECT * FROM sys.processlist",
            "SHOW ENGINE INNODB STATUS",
            f"EXECUTE IMMEDIATE CONCAT('{log[:20]}', '{log[20:]}')",
            "CREATE PROCEDURE test.peek() SELECT argument FROM mysql.general_log",
        ):
            code, message = _refused(carol, sql)
            assert code == 1227 and "process_list_groups" in message, sql
        prepared = mysql.connector.connect(
            host="127.0.0.1", port=p.port, user="carol", password="carol-pw-3"
        )
        with pytest.raises(mysql.connector.Error) as err:  # refused at COM_STMT_PREPARE
            prepared.cursor(prepared=True).execute(f"{log} WHERE thread_id > %s", (0,))
        assert err.value.errno == 1227
        prepared.close()
        with carol.cursor() as cur:  # carol's own work goes on
            cur.execute("SHOW TABLES FROM performance_schema")
            assert cur.fetchall()
        with alice.cursor() as cur:
            cur.execute(log)
            assert any("bob-secret-4711" in str(row[0]) for row in cur.fetchall())
    finally:
        mariadb.sql("SET GLOBAL general_log = OFF; TRUNCATE mysql.general_log;")
    for conn in (bob, carol, alice):
        conn.close()
