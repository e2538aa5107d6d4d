"""The process list a user sees is myguard's (issue 17): their own sessions, under the ids
they were given, everyone's for members of ``process_list_groups``; the backend's list,
where all sessions are the service account's, never reaches them."""

from __future__ import annotations

import threading
import time

import mysql.connector
import pymysql
import pytest

from mariadb_server import ROOT_PASSWORD as ROOT


def connect(proxy, user: str, password: str):
    return pymysql.connect(
        host="127.0.0.1", port=proxy.port, user=user, password=password, database="shop",
        autocommit=True,
    )  # fmt: skip


@pytest.fixture()
def listed(private_proxy):
    p = private_proxy(workers=2, process_list_groups=["dba"])
    alice = connect(p, "alice", "alice-pw-1")  # dba
    carol = connect(p, "carol", "carol-pw-3")
    bob = connect(p, "bob", "bob-pw-2")  # analysts, with masking
    yield p, alice, carol, bob
    for conn in (alice, carol, bob):
        conn.close()


def show(conn, full: bool = False):
    with conn.cursor() as cur:
        cur.execute("SHOW FULL PROCESSLIST" if full else "SHOW PROCESSLIST")
        return cur.fetchall()


def test_users_see_their_own_sessions_under_their_ids(listed):
    _, alice, carol, bob = listed
    rows = show(carol)
    assert [(int(r[0]), r[1]) for r in rows] == [(carol.thread_id(), "carol")]
    assert rows[0][4] == "Query" and rows[0][7] == "SHOW PROCESSLIST"
    assert rows[0][2].startswith("127.0.0.1:")
    assert {r[1] for r in show(bob)} == {"bob"}


@pytest.mark.parametrize(
    "sql",
    [
        "SHOW /* c */ PROCESSLIST",
        "/* c */ SHOW FULL PROCESSLIST",
        "SHOW PROCESSLIST -- c",
        "/*!SHOW PROCESSLIST*/",
        "/*M!100000 SHOW FULL PROCESSLIST */",
    ],
)
def test_show_processlist_in_any_spelling_is_myguards(listed, sql):
    """With a comment around it the text missed the rewrite and went to the backend, which
    listed every session of the service account: every user's statements."""
    _, _, carol, _ = listed
    with carol.cursor() as cur:
        cur.execute(sql)
        assert [(int(r[0]), r[1]) for r in cur.fetchall()] == [(carol.thread_id(), "carol")]


def test_show_processlist_among_other_statements_is_refused(listed):
    p, _, _, _ = listed
    conn = pymysql.connect(
        host="127.0.0.1", port=p.port, user="carol", password="carol-pw-3",
        client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS,
    )  # fmt: skip
    with conn.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as err:
        cur.execute("SHOW PROCESSLIST; SELECT 1")
    assert err.value.args[0] == 1148 and "statement of its own" in err.value.args[1]
    conn.close()


def test_a_process_list_group_sees_every_session_in_every_worker(listed):
    _, alice, carol, bob = listed
    ids = {int(r[0]): r[1] for r in show(alice)}
    assert ids[carol.thread_id()] == "carol" and ids[bob.thread_id()] == "bob"
    assert ids[alice.thread_id()] == "alice"


def test_statements_show_and_masked_identities_have_literals_redacted(listed):
    _, alice, carol, bob = listed
    threads = [
        threading.Thread(target=lambda: bob.cursor().execute("SELECT SLEEP(2), 'bob-secret'")),
        threading.Thread(target=lambda: carol.cursor().execute("SELECT SLEEP(2), 'carol-x'")),
    ]
    for t in threads:
        t.start()
    time.sleep(0.5)
    info = {r[1]: r[7] for r in show(alice, full=True)}
    for t in threads:
        t.join(10)
    assert info["carol"] == "SELECT SLEEP(2), 'carol-x'"
    assert "bob-secret" not in info["bob"] and info["bob"].startswith("SELECT SLEEP(")


def test_busy_sessions_show_what_their_backend_threads_wait_for(listed):
    """Tools and DBAs look for a session's state (``User lock``, ``Waiting for table
    metadata lock``): a busy session shows its backend thread's, in SHOW PROCESSLIST and in
    information_schema.PROCESSLIST, across workers (the list is the backend's by id)."""
    _, alice, carol, bob = listed
    with carol.cursor() as cur:
        cur.execute("SELECT GET_LOCK('myguard-state-test', 30)")
        assert cur.fetchone() == (1,)
    waiter = threading.Thread(
        target=lambda: bob.cursor().execute("SELECT GET_LOCK('myguard-state-test', 30)")
    )
    sleeper = threading.Thread(target=lambda: carol.cursor().execute("SELECT SLEEP(3)"))
    waiter.start()
    sleeper.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            states = {r[1]: r[6] for r in show(alice)}
            if states.get("bob") == "User lock" and states.get("carol") == "User sleep":
                break
            time.sleep(0.1)
        assert (states["bob"], states["carol"]) == ("User lock", "User sleep")
        assert states["alice"] == "executing"  # its own: the SHOW
        with alice.cursor() as cur:
            cur.execute("SELECT USER FROM information_schema.PROCESSLIST WHERE STATE = 'User lock'")
            assert cur.fetchall() == (("bob",),)
    finally:
        sleeper.join(10)
        with carol.cursor() as cur:
            cur.execute("SELECT RELEASE_LOCK('myguard-state-test')")
        waiter.join(10)
    assert {r[1]: r[6] for r in show(alice)}["bob"] == ""  # idle again


def test_information_schema_processlist_is_myguards(listed):
    _, alice, carol, _ = listed
    with carol.cursor() as cur:
        cur.execute(
            "SELECT ID, USER, COMMAND, INFO FROM information_schema.PROCESSLIST WHERE ID = "
            "CONNECTION_ID()"
        )
        row = cur.fetchone()
        assert row[:3] == (carol.thread_id(), "carol", "Query")
        cur.execute(
            "SELECT COUNT(*) FROM `INFORMATION_SCHEMA`.`processlist` p WHERE p.user <> 'carol'"
        )
        assert cur.fetchone() == (0,)
    with alice.cursor() as cur:
        cur.execute("SELECT USER FROM information_schema.PROCESSLIST ORDER BY ID")
        assert {"alice", "carol", "bob"} <= {r[0] for r in cur.fetchall()}


def test_process_list_columns_are_typed_as_the_servers(listed, mariadb):
    """Id and Time are numbers, as the server sends them: drivers hand them on as ints (a
    KILL built from SHOW PROCESSLIST's Id needs one)."""
    _, _, carol, _ = listed
    direct = pymysql.connect(host="127.0.0.1", port=mariadb.port, user="root", password=ROOT)
    shapes = []
    for conn in (direct, carol):
        with conn.cursor() as cur:
            cur.execute("SHOW FULL PROCESSLIST")
            shapes.append([(f.name, f.type_code, f.flags & 1) for f in cur._result.fields])
            row = cur.fetchall()[0]
            assert isinstance(row[0], int) and isinstance(row[5], int)
    assert shapes[0] == shapes[1]
    with carol.cursor() as cur:
        cur.execute("SELECT ID, TIME FROM information_schema.PROCESSLIST")
        assert cur.fetchall() == ((carol.thread_id(), 0),)
        # Every column the server's table has (MariaDB's main.user_var reads MEMORY_USED).
        cur.execute(
            "SELECT MEMORY_USED FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()"
        )
        assert cur.fetchall() == ((0,),)
        cur.execute("SELECT * FROM information_schema.PROCESSLIST")
        mine = [d[0].upper() for d in cur.description]
    with direct.cursor() as cur:
        cur.execute("SELECT * FROM information_schema.PROCESSLIST")
        assert mine == [d[0].upper() for d in cur.description]
    direct.close()


def test_processlist_named_for_a_column_or_a_type(listed, mariadb):
    """A column qualified with the schema names myguard's rows too; a stored routine's
    ``TYPE OF information_schema.PROCESSLIST.INFO`` (MariaDB's main.sp-anchor-type) is a
    type, not a read, and reaches the server as written."""
    _, alice, carol, _ = listed
    with carol.cursor() as cur:
        cur.execute(
            "SELECT information_schema.PROCESSLIST.USER FROM information_schema.PROCESSLIST"
            " WHERE information_schema.PROCESSLIST.ID = CONNECTION_ID()"
        )
        assert cur.fetchall() == (("carol",),)
    with alice.cursor() as cur:
        cur.execute("DROP PROCEDURE IF EXISTS test.pl_anchor")
        cur.execute(
            "CREATE PROCEDURE test.pl_anchor() BEGIN"
            " DECLARE info TYPE OF INFORMATION_SCHEMA.PROCESSLIST.INFO DEFAULT 'x';"
            " SELECT info; END"
        )
        cur.execute("CALL test.pl_anchor()")
        assert cur.fetchall() == (("x",),)
        cur.execute("DROP PROCEDURE test.pl_anchor")


@pytest.mark.parametrize(
    "sql",
    [
        "PREPARE s FROM 'SHOW FULL PROCESSLIST'",
        "EXECUTE IMMEDIATE 'SELECT info FROM information_schema.processlist'",
        "CREATE VIEW test.pl_view AS SELECT * FROM information_schema.PROCESSLIST",
        "CREATE PROCEDURE test.pl_proc() SELECT info FROM information_schema.processlist",
    ],
)
def test_the_backends_process_list_out_of_the_rewrites_reach_is_refused(listed, sql):
    """Dynamic SQL keeps the process list in a string, a view or routine reads it later
    without myguard: each would show every user's statements, so each is refused."""
    _, _, carol, _ = listed
    with carol.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as exc:
        cur.execute(sql)
    assert exc.value.args[0] == 1148 and "process list" in exc.value.args[1]


def test_a_prepared_statement_over_the_process_list_is_refused(listed):
    p, _, _, _ = listed
    conn = mysql.connector.connect(
        host="127.0.0.1", port=p.port, user="carol", password="carol-pw-3", database="shop"
    )
    try:
        for sql in (
            "SELECT ID, INFO FROM information_schema.PROCESSLIST WHERE ID > 0",
            "SELECT information_schema.processlist.info FROM information_schema.processlist",
            "SHOW FULL PROCESSLIST",
        ):
            cur = conn.cursor(prepared=True)
            with pytest.raises(mysql.connector.Error) as exc:
                cur.execute(sql)
            assert exc.value.errno == 1148 and "text queries only" in exc.value.msg, sql
        # The word alone reads no list (mysql-test sp-anchor-type in --ps-protocol):
        cur = conn.cursor(prepared=True)
        cur.execute("SELECT 'processlist' AS word")
        assert cur.fetchall() == [("processlist",)]
        cur.execute(
            "CREATE OR REPLACE PROCEDURE test.anchor() BEGIN"
            " DECLARE v TYPE OF information_schema.PROCESSLIST.INFO; SELECT v; END"
        )
        cur.execute("DROP PROCEDURE test.anchor")
        cur = conn.cursor()
        cur.execute("SELECT 1")  # the session carries on
        assert cur.fetchall() == [(1,)]
    finally:
        conn.close()


def test_ssl_status_describes_the_clients_leg(proxy):
    tls = pymysql.connect(
        host="127.0.0.1", port=proxy.port, user="carol", password="carol-pw-3",
        ssl={"check_hostname": False, "verify_mode": 0},
    )  # fmt: skip
    cipher, version = tls._sock.cipher()[0], tls._sock.version()
    for sql in ("SHOW STATUS LIKE 'Ssl_%'", "/* c */ SHOW /* d */ LOCAL STATUS LIKE 'Ssl_%'"):
        with tls.cursor() as cur:
            cur.execute(sql)
            status = dict(cur.fetchall())
        assert status["Ssl_cipher"] == cipher and status["Ssl_version"] == version, sql
    tls.close()
    plain = pymysql.connect(
        host="127.0.0.1", port=proxy.port, user="carol", password="carol-pw-3", ssl_disabled=True
    )
    with plain.cursor() as cur:
        cur.execute("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_cipher', 'Ssl_version')")
        assert dict(cur.fetchall()) == {"Ssl_cipher": "", "Ssl_version": ""}
    plain.close()


def test_ssl_status_answer_carries_the_sessions_status_and_the_servers_columns(proxy):
    """myguard answers SHOW STATUS itself: with the session's autocommit and transaction
    flags as they stand (an OK of SET autocommit=0 reports 0, an error reports none), and
    columns typed as the server types them (NOT NULL: drivers read it)."""
    # mysql.connector's last word at login is SET @@session.autocommit = OFF.
    connector = mysql.connector.connect(
        host="127.0.0.1", port=proxy.port, user="carol", password="carol-pw-3", use_pure=True
    )
    answer = connector.cmd_query("SHOW STATUS LIKE 'Ssl_version'")
    connector.get_rows()
    assert answer["eof"]["status_flag"] == 0  # neither autocommit nor a transaction
    assert [column[7] for column in answer["columns"]] == [4097, 4097]  # flags
    connector.close()
    conn = pymysql.connect(
        host="127.0.0.1", port=proxy.port, user="carol", password="carol-pw-3", autocommit=True
    )
    with conn.cursor() as cur:
        cur.execute("SET autocommit = 0")
        cur.execute("START TRANSACTION")
        with pytest.raises(pymysql.err.MySQLError):
            cur.execute("SELECT * FROM no_such_table")
        cur.execute("SHOW STATUS LIKE 'Ssl_version'")
        assert conn.server_status & 1  # SERVER_STATUS_IN_TRANS
        cur.execute("ROLLBACK")
    conn.close()


def test_prepare_from_a_variable_is_decided_on_what_the_variable_holds(listed):
    """``PREPARE s FROM @v`` is decided on the text in ``@v`` (read from the session's
    backend connection first): the process list cannot hide in a variable, the rules see
    the statement, and ordinary dynamic SQL runs."""
    _, _, carol, _ = listed
    with carol.cursor() as cur:
        cur.execute("SET @q = CONCAT('SHOW FULL ', 'PROCESSLIST')")
        with pytest.raises(pymysql.err.MySQLError) as exc:
            cur.execute("PREPARE s FROM @q")
        assert exc.value.args[0] == 1148 and "process list" in exc.value.args[1]
        cur.execute("SET @q = 'DELETE FROM shop.orders'")
        with pytest.raises(pymysql.err.MySQLError) as exc:
            cur.execute("PREPARE s FROM @q")
        assert exc.value.args[0] == 4700 and "no-unbounded-writes" in exc.value.args[1]
        cur.execute("SET @`my q` = 'SELECT ? + 1'")
        cur.execute("PREPARE s FROM @`my q`")
        cur.execute("SET @a = 41")
        cur.execute("EXECUTE s USING @a")
        assert cur.fetchall() == ((42,),)
        cur.execute("SET @q = NULL")  # the server's own error, as directly
        with pytest.raises(pymysql.err.MySQLError) as exc:
            cur.execute("PREPARE s FROM @q")
        assert exc.value.args[0] == 1064
        cur.execute("SELECT 1")
        assert cur.fetchall() == ((1,),)


def test_a_latin1_client_reads_the_list_in_its_characters(private_proxy):
    """myguard's own result sets are in the client's character set, as the server's are
    (converted to character_set_results): another session's statement with 'è' reads as
    such for a latin1 client, and what latin1 cannot hold becomes '?'."""
    p = private_proxy(workers=1, process_list_groups=["dba"])
    alice = pymysql.connect(
        host="127.0.0.1", port=p.port, user="alice", password="alice-pw-1", database="shop",
        autocommit=True, charset="latin1",
    )  # fmt: skip
    carol = connect(p, "carol", "carol-pw-3")
    sql = "SELECT SLEEP(3), 'Crème', 'Мир'"
    running = threading.Thread(target=lambda: carol.cursor().execute(sql))
    running.start()
    try:
        deadline = time.monotonic() + 5
        while True:
            infos = [r[7] for r in show(alice, full=True) if r[1] == "carol"]
            if infos and infos[0] and infos[0].startswith("SELECT SLEEP"):
                break
            assert time.monotonic() < deadline, infos
            time.sleep(0.05)
        assert infos == ["SELECT SLEEP(3), 'Crème', '???'"]
        with alice.cursor() as cur:  # the backend answers it over myguard's rows
            cur.execute(
                "SELECT INFO FROM information_schema.PROCESSLIST"
                " WHERE USER = 'carol' AND INFO LIKE '%rème%'"
            )
            assert cur.fetchall() == (("SELECT SLEEP(3), 'Crème', '???'",),)
    finally:
        running.join()
        alice.close()
        carol.close()
