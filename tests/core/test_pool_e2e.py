"""Pooled backend connections (issue 18), end to end with real clients through myguard.

Each test starts its own myguard with one worker and a small pool, so that which backend
connection a session gets is known: ``@@pseudo_thread_id`` is the backend thread's id
(myguard answers CONNECTION_ID() with its own session id).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.request

import mysql.connector
import mysql.connector.aio
import pymysql
import pytest

from mariadb_server import ROOT_PASSWORD

USERS = {"alice": "alice-pw-1", "bob": "bob-pw-2", "carol": "carol-pw-3"}


def connect(proxy, user="alice", database=None, **extra):
    return pymysql.connect(
        host="127.0.0.1",
        port=proxy.port,
        user=user,
        password=USERS[user],
        database=database,
        autocommit=extra.pop("autocommit", True),
        **extra,
    )


def one(conn, sql):
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()


def thread_id(conn) -> int:
    return one(conn, "SELECT @@pseudo_thread_id")[0]


def pool_proxy(private_proxy, **pool):
    settings = {"min_idle": 0, "max": 1, "wait_timeout": 2, **pool}
    return private_proxy(workers=1, backend={"pool": settings})


def metric(proxy, name: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{proxy.admin_port}/metrics").read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def test_no_session_state_reaches_the_next_client_on_the_same_connection(private_proxy, mariadb):
    mariadb.sql(
        "CREATE TABLE IF NOT EXISTS test.pool_iso (id INT AUTO_INCREMENT PRIMARY KEY, v INT)"
    )
    p = pool_proxy(private_proxy)
    first = connect(p, "alice", "shop", charset="latin1")
    backend = thread_id(first)
    with first.cursor() as cur:
        cur.execute("SET @leak = 42")
        cur.execute("CREATE TEMPORARY TABLE test.pool_tmp (a INT)")
        cur.execute("SET sql_mode = 'ANSI_QUOTES'")
        cur.execute("SET autocommit = 0")
        cur.execute("INSERT INTO test.pool_iso (v) VALUES (7)")  # never committed
        cur.execute("SELECT LAST_INSERT_ID()")
        assert cur.fetchone()[0] > 0
        cur.execute("PREPARE leaked FROM 'SELECT 1'")
        cur.execute("SELECT GET_LOCK('pool_lock', 0)")
        assert cur.fetchone() == (1,)
        cur.execute("USE test")
        cur.execute("SELECT @@character_set_client, DATABASE(), @myguard_user")
        assert cur.fetchone() == ("latin1", "test", "alice")
    first.close()  # COM_QUIT: the connection goes back, reset
    # max = 1 and the same client library (the same capabilities): the same backend
    # thread, reset.
    bob = connect(p, "bob", "shop")
    assert one(bob, "SELECT @@pseudo_thread_id, DATABASE(), @leak, @myguard_user") == (
        backend,
        "shop",
        None,
        "bob",
    )
    bob.close()

    second = connect(p, "carol", autocommit=None)
    assert thread_id(second) == backend
    with second.cursor() as cur:
        cur.execute(
            "SELECT @leak, @@sql_mode LIKE '%ANSI_QUOTES%', @@autocommit, LAST_INSERT_ID(),"
            " DATABASE(), IS_FREE_LOCK('pool_lock'), @@character_set_client,"
            " @myguard_user, @myguard_session"
        )
        row = cur.fetchone()
        assert row[:7] == (None, 0, 1, 0, None, 1, "utf8mb4")
        assert row[7:] == ("carol", second.thread_id())
        with pytest.raises(pymysql.err.MySQLError) as temp:
            cur.execute("SELECT * FROM test.pool_tmp")
        assert temp.value.args[0] == 1146
        with pytest.raises(pymysql.err.MySQLError) as stmt:
            cur.execute("EXECUTE leaked")
        assert stmt.value.args[0] == 1243  # unknown prepared statement
        cur.execute("SELECT COUNT(*) FROM test.pool_iso WHERE v = 7")
        assert cur.fetchone() == (0,)  # alice's open transaction was rolled back
    second.close()


def test_binary_prepared_statements_do_not_survive_the_session(private_proxy, mariadb):
    def server_statements() -> int:
        return int(mariadb.sql("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'").split()[1])

    def connector(user):
        return mysql.connector.connect(
            host="127.0.0.1", port=p.port, user=user, password=USERS[user], database="shop"
        )

    p = pool_proxy(private_proxy)
    before = server_statements()
    first = connector("alice")
    cursors = [first.cursor(prepared=True) for _ in range(3)]
    for i, cur in enumerate(cursors):
        cur.execute("SELECT ?", (i,))
        assert cur.fetchone() == (i,)
    backend = one_connector(first, "SELECT @@pseudo_thread_id")
    assert server_statements() == before + 3
    first.close()  # the statements are left open: the reset closes them
    deadline = time.monotonic() + 5
    while server_statements() != before:
        assert time.monotonic() < deadline, "the reset left prepared statements open"
        time.sleep(0.05)
    second = connector("carol")
    assert one_connector(second, "SELECT @@pseudo_thread_id") == backend
    second.close()


def one_connector(conn, sql):
    cur = conn.cursor()
    cur.execute(sql)
    row = cur.fetchone()
    cur.close()
    return row[0]


def test_a_full_pool_makes_logins_wait_then_refuses_naming_the_limit(private_proxy):
    p = pool_proxy(private_proxy, max=2, wait_timeout=1)
    held = [connect(p), connect(p, "carol")]
    with pytest.raises(pymysql.err.OperationalError) as refused:
        connect(p, "bob")
    code, message = refused.value.args
    assert code == 1040
    assert "max = 2" in message and "backend 'main'" in message

    # A login that waits gets the connection a session gives back.
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(connect(p, "bob")))
    waiter.start()
    time.sleep(0.3)
    held.pop().close()
    waiter.join(10)
    assert len(got) == 1 and isinstance(got[0], pymysql.connections.Connection)
    assert one(got[0], "SELECT @myguard_user") == ("bob",)
    got[0].close()
    held[0].close()
    assert metric(p, "myguard_backend_pool_waits_total") >= 2
    assert metric(p, 'myguard_backend_pool_failures_total{backend="main",reason="exhausted"}') >= 1


def test_a_killed_sessions_connection_never_serves_the_next_owner(private_proxy):
    p = pool_proxy(private_proxy, max=3)
    killer = connect(p, "alice")
    victim = connect(p, "alice")
    victim_thread, victim_session = thread_id(victim), victim.thread_id()
    outcome: list[object] = []

    def sleep() -> None:
        try:
            outcome.append(one(victim, "SELECT SLEEP(10)"))
        except pymysql.err.MySQLError as exc:
            outcome.append(exc)

    running = threading.Thread(target=sleep)
    running.start()
    time.sleep(0.5)
    with killer.cursor() as cur:
        cur.execute(f"KILL QUERY {victim_session}")
    running.join(10)
    assert outcome and outcome[0] != (0,)  # interrupted
    victim.close()

    # The next session gets another backend thread, and a late KILL of either id of the
    # gone session reaches nobody: the next owner's statement runs to its end.
    nxt = connect(p, "carol")
    assert thread_id(nxt) != victim_thread
    finished: list[object] = []
    t = threading.Thread(target=lambda: finished.append(one(nxt, "SELECT SLEEP(1)")))
    t.start()
    time.sleep(0.3)
    for target in (victim_session, victim_thread):
        with pytest.raises(pymysql.err.MySQLError) as gone, killer.cursor() as cur:
            cur.execute(f"KILL {target}")
        assert gone.value.args[0] in (1094, 1095)
    t.join(10)
    assert finished == [(0,)]
    nxt.close()
    killer.close()


def test_late_kill_of_a_quit_session_does_not_reach_the_reused_connection(private_proxy):
    p = pool_proxy(private_proxy, max=2)
    killer = connect(p, "alice")
    gone = connect(p, "alice")
    gone_thread, gone_session = thread_id(gone), gone.thread_id()
    gone.close()
    heir = connect(p, "carol")
    assert thread_id(heir) == gone_thread  # the same backend thread, reset
    finished: list[object] = []
    t = threading.Thread(target=lambda: finished.append(one(heir, "SELECT SLEEP(1)")))
    t.start()
    time.sleep(0.3)
    for target in (gone_session, gone_thread):
        with pytest.raises(pymysql.err.MySQLError) as refused, killer.cursor() as cur:
            cur.execute(f"KILL QUERY {target}")
        # the gone session is unknown; the thread id is carol's session now, not alice's
        assert refused.value.args[0] in (1094, 1095)
    t.join(10)
    assert finished == [(0,)]
    heir.close()
    killer.close()


def test_pool_can_be_turned_off(private_proxy):
    p = private_proxy(workers=1, backend={"pool": {"enabled": False}})
    first = connect(p)
    first_thread = thread_id(first)
    first.close()
    second = connect(p)
    assert thread_id(second) != first_thread
    with second.cursor() as cur:
        # A connection of its own carries the user in its connection attributes.
        cur.execute("SELECT @myguard_user")
        assert cur.fetchone() == (None,)
    second.close()
    assert metric(p, 'myguard_backend_pool_max{backend="main"}') == 0


def test_pool_metrics_and_warm_up(private_proxy):
    p = private_proxy(workers=1, backend={"pool": {"min_idle": 2}})
    deadline = time.monotonic() + 10
    while metric(p, 'myguard_backend_pool_connections{backend="main",state="idle"}') < 2:
        assert time.monotonic() < deadline, "the pool did not warm up"
        time.sleep(0.2)
    for _ in range(3):
        connect(p).close()  # nothing reaches the backend: back without a reset
    for _ in range(3):
        conn = connect(p)
        conn.ping()
        conn.close()
    time.sleep(1.5)  # metrics are flushed once a second
    assert metric(p, 'myguard_backend_pool_checkouts_total{backend="main",result="reused"}') >= 5
    assert metric(p, 'myguard_backend_pool_untouched_total{backend="main"}') >= 2
    assert metric(p, "myguard_backend_pool_resets_total") >= 3
    assert metric(p, 'myguard_backend_pool_max{backend="main"}') > 100  # from max_connections


def test_a_profiling_sessions_connection_is_not_pooled_again(private_proxy):
    """COM_RESET_CONNECTION keeps the history of profiled statements: a connection that
    profiled is closed, so the next user's SHOW PROFILES cannot list alice's texts."""
    p = pool_proxy(private_proxy)
    alice = connect(p, "alice")
    first = thread_id(alice)
    for sql in ("SET profiling = 1", "SELECT 'alices_secret'", "SET profiling = 0"):
        one(alice, sql)
    alice.close()
    carol = connect(p, "carol")
    assert thread_id(carol) != first
    with carol.cursor() as cur:
        cur.execute("SHOW PROFILES")
        assert "alices_secret" not in repr(cur.fetchall())
    carol.close()
    # A session that did not profile leaves its connection to the next one.
    bob = connect(p, "bob")
    reused = thread_id(bob)
    bob.close()
    carol = connect(p, "carol")
    assert thread_id(carol) == reused
    carol.close()


def test_a_clients_ignore_space_holds_on_a_reused_connection(private_proxy):
    """CLIENT_IGNORE_SPACE (mysql2 and Connector/J send it) is sql_mode IGNORE_SPACE from
    the login on; a reset puts the global sql_mode back, so checkout sets it again."""
    p = pool_proxy(private_proxy)
    flag = pymysql.constants.CLIENT.IGNORE_SPACE
    threads = set()
    for _ in range(3):
        conn = connect(p, client_flag=flag)
        threads.add(thread_id(conn))
        assert "IGNORE_SPACE" in one(conn, "SELECT @@sql_mode")[0]
        assert one(conn, "SELECT COUNT (*) FROM shop.orders")[0] > 0
        conn.close()
    assert len(threads) == 1  # one backend connection, reset between the three
    plain = connect(p)  # a client without the flag: a connection of its own bucket
    assert "IGNORE_SPACE" not in one(plain, "SELECT @@sql_mode")[0]
    plain.close()


def test_a_new_session_starts_from_todays_global_values(private_proxy, mariadb):
    """Session variables start from the global values: a global changed while the pooled
    connection sat idle holds for the next session, as on a fresh connection."""
    p = pool_proxy(private_proxy)
    first = connect(p)
    before = thread_id(first)
    assert one(first, "SELECT @@SESSION.div_precision_increment")[0] == 4
    first.close()  # reset at once, then idle in the pool
    time.sleep(0.2)
    mariadb.sql("SET GLOBAL div_precision_increment = 7")
    try:
        second = connect(p)
        assert thread_id(second) == before  # the same backend connection
        assert one(second, "SELECT @@SESSION.div_precision_increment")[0] == 7
        second.close()
    finally:
        mariadb.sql("SET GLOBAL div_precision_increment = DEFAULT")


def test_a_quit_with_another_sequence_id_still_pools_the_connection(private_proxy):
    """mysql.connector's asyncio connection closes with a COM_QUIT that carries the next
    sequence id of the last command, not 0: a quit all the same, the backend connection
    pooled again (it had ended the session as an error and closed the connection)."""
    p = pool_proxy(private_proxy)

    async def one_session() -> int:
        conn = await mysql.connector.aio.connect(
            host="127.0.0.1", port=p.port, user="alice", password=USERS["alice"]
        )
        cur = await conn.cursor()
        await cur.execute("SELECT @@pseudo_thread_id")
        (thread,) = await cur.fetchone()
        await cur.close()
        await conn.close()
        return thread

    threads = {asyncio.run(one_session()) for _ in range(3)}
    assert len(threads) == 1
    assert "1156" not in p.log() and "out of order" not in p.log()


def test_a_client_gone_mid_statement_stops_its_backend_statement(proxy, mariadb):
    """A client that drops its connection while its statement waits (GET_LOCK): the
    backend connection is closed without a COM_QUIT behind the statement, so the server
    sees the client gone and ends the wait, as for a direct client (with the COM_QUIT
    unread it took the client for alive and waited its whole timeout)."""
    holder = connect(proxy)
    assert one(holder, "SELECT GET_LOCK('pool_dirty_close', 0)") == (1,)
    waiter = connect(proxy)
    waiter._execute_command(3, "SELECT GET_LOCK('pool_dirty_close', 3600)")  # COM_QUERY
    waiting = (
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT GET_LOCK%'"
    )
    deadline = time.monotonic() + 5
    while mariadb.sql(waiting).strip() != "1":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    waiter._sock.shutdown(socket.SHUT_RDWR)  # gone, no COM_QUIT
    waiter._sock.close()
    deadline = time.monotonic() + 5
    while mariadb.sql(waiting).strip() != "0":
        assert time.monotonic() < deadline, "the backend statement still waits"
        time.sleep(0.1)
    assert one(holder, "SELECT RELEASE_LOCK('pool_dirty_close')") == (1,)
    holder.close()


@pytest.mark.parametrize("pool", [{"min_idle": 0}, {"enabled": False}], ids=["fresh", "off"])
def test_an_unknown_database_at_login_is_the_servers_error(private_proxy, mariadb, pool):
    """A login naming a database that does not exist gets what a direct login gets (1049,
    which frameworks read as "create it"), not 4690 "backend unavailable", whether the
    pool opens a connection for it or is off; and the pool is none the worse."""
    p = private_proxy(workers=1, backend={"pool": pool})
    errors = []
    ends = [(mariadb.port, "root", ROOT_PASSWORD), (p.port, "alice", USERS["alice"])]
    for port, user, password in ends * 2:
        with pytest.raises(pymysql.err.OperationalError) as err:
            pymysql.connect(
                host="127.0.0.1", port=port, user=user, password=password, database="nosuchdb"
            )
        errors.append(err.value.args)
    assert errors[1] == errors[0] == (1049, "Unknown database 'nosuchdb'")
    assert errors[3] == errors[0]
    connect(p).close()
    if pool.get("enabled", True):
        time.sleep(1.5)  # metrics are flushed once a second
        assert metric(p, "myguard_backend_pool_failures_total") == 0
