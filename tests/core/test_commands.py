"""Every command carried through: KILL mapping, CHANGE_USER, FIELD_LIST, cursors, LOAD DATA LOCAL..."""

from __future__ import annotations

import struct
import threading
import time

import mysql.connector
import MySQLdb
import pymysql
import pytest
from pymysql.constants import CLIENT

from mariadb_server import ROOT_PASSWORD
from myguard.protocol.codec import PayloadReader
from raw_client import RawClient, as_error


def connect(proxy, user="alice", password="alice-pw-1", **kw):
    return pymysql.connect(
        host="127.0.0.1", port=proxy.port, user=user, password=password, database="shop", **kw
    )


def test_connection_id_is_the_myguard_session(proxy):
    conn = connect(proxy)
    c = RawClient(proxy.port)
    c.login("alice", "alice-pw-1")
    assert conn.thread_id() != c.greeting.connection_id and conn.thread_id() > 0
    c.close()


def test_kill_query_of_own_session(proxy):
    victim = connect(proxy)
    killer = connect(proxy)
    errors = []

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
    with killer.cursor() as cur:
        cur.execute(f"KILL QUERY {victim.thread_id()}")
    t.join(10)
    assert not t.is_alive()
    # MariaDB answers an interrupted SLEEP with 1 (or error 1317); either way it stopped early.
    assert errors and (errors[0] == (1,) or errors[0].args[0] == 1317)
    with victim.cursor() as cur:  # KILL QUERY leaves the session usable
        cur.execute("SELECT 2")
        assert cur.fetchone() == (2,)


def test_kill_connection_and_com_process_kill(proxy):
    victim = connect(proxy)
    killer = connect(proxy)
    with killer.cursor() as cur:
        cur.execute(f"KILL {victim.thread_id()}")
    with pytest.raises(pymysql.err.OperationalError):
        victim.cursor().execute("SELECT 1")
    victim = connect(proxy)
    killer.kill(victim.thread_id())  # COM_PROCESS_KILL
    with pytest.raises(pymysql.err.OperationalError):
        victim.cursor().execute("SELECT 1")


def test_users_may_kill_only_their_own_sessions(proxy):
    alices = connect(proxy)
    bob = connect(proxy, "bob", "bob-pw-2")
    with bob.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as err:
        cur.execute(f"KILL {alices.thread_id()}")
    assert err.value.args[0] == 1095 and "not owner" in err.value.args[1]
    with bob.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as err:
        cur.execute("KILL 987654")
    assert err.value.args[0] == 1094
    with bob.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as err:
        cur.execute("KILL USER alice")
    assert err.value.args[0] == 1095
    with alices.cursor() as cur:
        cur.execute("SELECT 1")


def test_change_user_reauthenticates_against_myguard(proxy):
    conn = mysql.connector.connect(
        host="127.0.0.1", port=proxy.port, user="alice", password="alice-pw-1", database="shop"
    )
    cur = conn.cursor()
    cur.execute("SET @x = 42")
    conn.cmd_change_user(username="bob", password="bob-pw-2", database="shop")
    cur = conn.cursor()
    cur.execute("SELECT @x, DATABASE()")
    assert cur.fetchone() == (None, "shop")  # the backend session was reset
    assert "event=change_user" in proxy.log() and "user=bob" in proxy.log()
    with pytest.raises(mysql.connector.Error) as err:
        conn.cmd_change_user(username="bob", password="wrong")
    assert err.value.errno == 1045


def test_a_failed_change_user_keeps_the_session_reset_as_the_server_does(proxy, mariadb):
    """MariaDB answers a COM_CHANGE_USER that fails with 1045 and keeps the connection, as
    the user it was, reset (variables gone, database kept)."""
    direct = MySQLdb.connect(
        host="127.0.0.1", port=mariadb.port, user="root", passwd=ROOT_PASSWORD, db="shop"
    )
    conn = MySQLdb.connect(
        host="127.0.0.1", port=proxy.port, user="alice", password="alice-pw-1", database="shop"
    )
    for c in (direct, conn):
        c.cursor().execute("SET @x = 42")
        with pytest.raises(MySQLdb.OperationalError) as err:
            c.change_user("bob", "wrong", "test")
        assert err.value.args[0] == 1045
        cur = c.cursor()
        cur.execute("SELECT @x, DATABASE()")
        assert cur.fetchone() == (None, "shop")
    cur = conn.cursor()
    cur.execute("SELECT @myguard_user")
    assert cur.fetchone() == ("alice",)  # still alice, to the rules and the backend
    cur.execute("SELECT COUNT(*) FROM orders")
    assert cur.fetchone() == (9,)
    denied = [r for r in proxy.audit_records() if r.type == "login" and r["user"] == "bob"]
    assert denied and denied[-1]["success"] is False
    conn.close()
    direct.close()


def test_mysqlclient_change_user_and_ping(proxy):
    conn = MySQLdb.connect(
        host="127.0.0.1", port=proxy.port, user="alice", password="alice-pw-1", database="shop"
    )
    conn.ping()
    conn.change_user("carol", "carol-pw-3", "shop")
    cur = conn.cursor()
    cur.execute("SELECT COUNT(*) FROM orders")
    assert cur.fetchone() == (9,)
    assert conn.stat().startswith("Uptime")  # COM_STATISTICS
    conn.select_db("test")  # COM_INIT_DB
    cur.execute("SELECT DATABASE()")
    assert cur.fetchone() == ("test",)


def test_init_db_to_unknown_database_passes_the_error(proxy):
    conn = MySQLdb.connect(host="127.0.0.1", port=proxy.port, user="alice", password="alice-pw-1")
    with pytest.raises(MySQLdb.OperationalError) as err:
        conn.select_db("no_such_db")
    assert err.value.args[0] == 1049


def test_field_list(proxy):
    c = RawClient(proxy.port)
    c.login("alice", "alice-pw-1", database="shop")
    c.seq = 0
    c.write_packet(b"\x04orders\x00")
    names = []
    while True:
        packet = c.read_packet()
        if packet[0] == 0xFE:
            break
        r = PayloadReader(packet)
        for _ in range(4):
            r.lenenc_str()
        names.append(r.lenenc_str().decode())
    assert names == ["id", "customer_id", "item", "quantity", "total", "status", "ordered_at"]
    assert c.command(b"\x0e")[:1] == b"\x00"


def test_set_option_and_reset_connection(proxy):
    conn = connect(proxy)
    conn.set_character_set("utf8mb4")
    c = RawClient(proxy.port)
    c.login("alice", "alice-pw-1")
    reply = c.command(b"\x1b\x00\x00")  # COM_SET_OPTION multi-statements on
    assert reply[:1] in (b"\x00", b"\xfe")
    assert c.command(b"\x1f")[:1] == b"\x00"  # COM_RESET_CONNECTION
    assert c.command(b"\x03SELECT 1; SELECT 2")[:1] == b"\x01"


@pytest.mark.parametrize("charset", ["latin1", "utf8mb4"])
def test_reset_connection_leaves_the_session_as_a_server_does(proxy, mariadb, charset):
    """COM_RESET_CONNECTION as MariaDB answers it directly: the login's character set
    again (not the pooled connection's own), the database kept, variables, temporary
    tables and prepared statements gone; and through myguard the identity set again."""

    def state(conn: pymysql.Connection, reset: bool) -> tuple:
        with conn.cursor() as cur:
            cur.execute("SET NAMES cp1251")
            cur.execute("SET @v = 1")
            cur.execute("CREATE TEMPORARY TABLE tmp_reset (a INT)")
            if reset:
                conn._execute_command(0x1F, b"")  # COM_RESET_CONNECTION
                assert conn._read_packet().is_ok_packet()
            cur.execute("SELECT @@character_set_client, @@collation_connection, DATABASE(), @v")
            got = cur.fetchone()
            with pytest.raises(pymysql.err.MySQLError) as err:  # the temporary table is gone
                cur.execute("SELECT * FROM tmp_reset")
            return (*got, err.value.args[0])

    direct = pymysql.connect(
        host="127.0.0.1", port=mariadb.port, user="root", password=ROOT_PASSWORD,
        database="shop", charset=charset,
    )  # fmt: skip
    proxied = connect(proxy, charset=charset)
    expected = state(direct, reset=True)
    assert expected[0] == charset and expected[2:] == ("shop", None, 1146)
    assert state(proxied, reset=True) == expected
    with proxied.cursor() as cur:  # whose session it is, for the backend's own views
        cur.execute("SELECT @myguard_user, @myguard_session")
        assert cur.fetchone() == ("alice", proxied.thread_id())
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    direct.close()
    proxied.close()


def test_reset_connection_on_a_lost_backend_ends_the_session(proxy, mariadb):
    """The backend connection dies before COM_RESET_CONNECTION: the session ends (a
    reset could not restore its state) with the connection lost (2013) or, when the
    reset itself met the dead connection, 4690; other sessions go on."""
    conn = connect(proxy)
    with conn.cursor() as cur:
        cur.execute("SELECT @@pseudo_thread_id")
        thread = cur.fetchone()[0]
    mariadb.sql(f"KILL {thread}")
    time.sleep(0.2)
    with pytest.raises(pymysql.err.MySQLError) as err:
        conn._execute_command(0x1F, b"")  # COM_RESET_CONNECTION
        conn._read_packet()
    assert err.value.args[0] in (2013, 4690)
    with pytest.raises(pymysql.err.MySQLError):
        conn.cursor().execute("SELECT 1")
    other = connect(proxy)
    with other.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    other.close()


def _execute_with_cursor(c: RawClient, stmt_id: int) -> list[bytes]:
    c.seq = 0
    c.write_packet(b"\x17" + struct.pack("<IBI", stmt_id, 1, 1))  # CURSOR_TYPE_READ_ONLY
    packets = [c.read_packet()]
    count = packets[0][0]
    for _ in range(count):
        packets.append(c.read_packet())
    packets.append(c.read_packet())  # EOF with SERVER_STATUS_CURSOR_EXISTS
    return packets


@pytest.mark.parametrize("deprecate_eof", [False, True])
def test_server_side_cursor_with_fetch(proxy, deprecate_eof):
    c = RawClient(proxy.port)
    c.login("alice", "alice-pw-1", database="shop", deprecate_eof=deprecate_eof)
    prepare = c.command(b"\x16SELECT id FROM orders ORDER BY id")
    stmt_id, columns, params = struct.unpack("<IHH", prepare[1:9])
    for _ in range(columns):
        c.read_packet()
    if not deprecate_eof:
        assert c.read_packet()[0] == 0xFE
    packets = _execute_with_cursor(c, stmt_id)
    assert struct.unpack("<H", packets[-1][3:5])[0] & 0x40
    ids = []
    while True:
        c.seq = 0
        c.write_packet(b"\x1c" + struct.pack("<II", stmt_id, 4))  # COM_STMT_FETCH 4 rows
        while True:
            packet = c.read_packet()
            if packet[0] == 0xFE:
                status = struct.unpack("<H", packet[3:5])[0]
                break
            ids.append(struct.unpack("<i", packet[2:6])[0])
        if status & 0x80:  # SERVER_STATUS_LAST_ROW_SENT
            break
    assert ids == list(range(1, 10))
    c.seq = 0
    c.write_packet(b"\x19" + struct.pack("<I", stmt_id))  # COM_STMT_CLOSE: no response
    assert c.command(b"\x0e")[:1] == b"\x00"


def test_send_long_data(proxy):
    conn = mysql.connector.connect(
        host="127.0.0.1",
        port=proxy.port,
        user="alice",
        password="alice-pw-1",
        database="test",
        use_pure=True,
    )
    cur = conn.cursor(prepared=True)
    cur.execute("CREATE TABLE IF NOT EXISTS long_data (b LONGBLOB)")
    import io

    data = b"0123456789" * 100000
    cur.execute("INSERT INTO long_data VALUES (?)", (io.BytesIO(data),))  # COM_STMT_SEND_LONG_DATA
    conn.commit()
    cur.execute("SELECT LENGTH(b) FROM long_data")
    assert cur.fetchall() == [(len(data),)]
    cur.execute("DROP TABLE long_data")


def test_load_data_local_is_off_by_default(private_proxy, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[defaults]\naction = "allow"\n')
    p = private_proxy(rules_file=rules)
    f = tmp_path / "rows.csv"
    f.write_text("1,a\n2,b\n")
    conn = connect(p, local_infile=True, client_flag=CLIENT.LOCAL_FILES)
    with conn.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as err:
        cur.execute(f"LOAD DATA LOCAL INFILE '{f}' INTO TABLE test.ld FIELDS TERMINATED BY ','")
    assert err.value.args[0] == 1148
    assert "LOAD DATA LOCAL INFILE is disabled for backend 'main'" in err.value.args[1]


def test_load_data_local_when_allowed(local_infile_proxy, tmp_path, mariadb):
    p = local_infile_proxy
    f = tmp_path / "rows.csv"
    f.write_text("".join(f"{i},row{i}\n" for i in range(1000)))
    mariadb.sql("CREATE TABLE IF NOT EXISTS test.ld (id INT, v VARCHAR(20))")
    conn = pymysql.connect(
        host="127.0.0.1",
        port=p.port,
        user="alice",
        password="alice-pw-1",
        database="test",
        local_infile=True,
    )
    with conn.cursor() as cur:
        cur.execute(f"LOAD DATA LOCAL INFILE '{f}' INTO TABLE ld FIELDS TERMINATED BY ','")
        assert cur.rowcount == 1000
        cur.execute("SELECT COUNT(*), MAX(v) FROM ld")
        assert cur.fetchone() == (1000, "row999")
        cur.execute("DROP TABLE ld")
    conn.commit()


def test_multi_statement_with_error_in_the_middle(proxy):
    conn = connect(proxy, client_flag=CLIENT.MULTI_STATEMENTS)
    with conn.cursor() as cur:
        with pytest.raises(pymysql.err.ProgrammingError) as err:
            cur.execute("SELECT 1; SELECT * FROM no_such_table; SELECT 3")
            while cur.nextset():
                pass
        assert err.value.args[0] == 1146
    with conn.cursor() as cur:
        cur.execute("SELECT 4")
        assert cur.fetchone() == (4,)


def test_raw_unknown_prepared_statement_id(proxy):
    c = RawClient(proxy.port)
    c.login("alice", "alice-pw-1")
    err = as_error(c.command(b"\x17" + struct.pack("<IBI", 12345, 0, 1)))
    assert err.code == 1243  # ER_UNKNOWN_STMT_HANDLER, from the backend


def test_client_no_schema_is_not_passed_on(proxy):
    """With CLIENT_NO_SCHEMA the server would read nosuchdb.customers as the current
    database's customers, while rules and masking read the name as written."""
    c = RawClient(proxy.port)  # asks for CLIENT_NO_SCHEMA
    assert c.login("alice", "alice-pw-1", "shop")[:1] == b"\x00"
    err = as_error(c.command(b"\x03SELECT COUNT(*) FROM nosuchdb.customers"))
    assert err.code == 1146  # the table, in the database written, does not exist
    c.close()
