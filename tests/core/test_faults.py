"""Bad input and faults: each gets a proper MySQL error or a clean close, and the proxy keeps serving."""

from __future__ import annotations

import os
import socket
import threading
import time

import pymysql
import pytest

from mariadb_server import ROOT_PASSWORD, MariaDBServer, free_port
from proxy_process import ProxyProcess
from raw_client import RawClient, as_error


def proxy_still_serves(proxy) -> None:
    conn = pymysql.connect(host="127.0.0.1", port=proxy.port, user="alice", password="alice-pw-1")
    with conn.cursor() as cur:
        cur.execute("SELECT 42")
        assert cur.fetchone() == (42,)
    conn.close()


def test_garbage_instead_of_handshake_response(proxy):
    c = RawClient(proxy.port)
    c.read_greeting()
    c.sock.sendall(b"\x05\x00\x00\x01hello")
    err = c.read_error()
    assert err.code == 1043 and err.sqlstate == "08S01"
    assert "Bad handshake" in err.message
    assert c.closed()
    proxy_still_serves(proxy)


def test_garbage_before_the_greeting_is_read(proxy):
    c = RawClient(proxy.port)
    garbage = os.urandom(64)
    # Byte 3 is read as the sequence id: were it the expected 1 (1 time in 256), the
    # random length would make myguard wait for the rest of the packet, not answer.
    garbage = garbage[:3] + b"\x00" + garbage[4:]
    c.sock.sendall(garbage + b"\xff\xff\xff\x01")
    c.read_greeting()
    err = c.read_error()
    assert err.code in (1043, 1153, 1156)
    assert c.closed()
    proxy_still_serves(proxy)


def test_truncated_handshake_response(proxy):
    c = RawClient(proxy.port)
    c.read_greeting()
    # Protocol-41 capabilities and the fixed part, then a user name that never ends.
    c.write_packet(b"\x8d\xa6\x0f\x00" + b"\x00" * 28 + b"alice")
    err = c.read_error()
    assert err.code == 1043
    assert c.closed()


def test_wrong_sequence_id_in_a_command(proxy):
    c = RawClient(proxy.port)
    assert c.login("alice", "alice-pw-1")[:1] == b"\x00"
    c.sock.sendall(b"\x01\x00\x00\x05\x0e")  # COM_PING with sequence id 5
    err = c.read_error()
    assert err.code == 1156 and "out of order" in err.message
    assert c.closed()
    proxy_still_serves(proxy)


def test_unknown_and_unsupported_commands_keep_the_session(proxy):
    c = RawClient(proxy.port)
    assert c.login("alice", "alice-pw-1")[:1] == b"\x00"
    for command in (b"\x12\x00\x00\x00\x00", b"\x08", b"\x42\x01\x02"):
        err = as_error(c.command(command))
        assert err.code == 1047
        assert "not supported" in err.message
    assert c.command(b"\x0e")[:1] == b"\x00"  # COM_PING still works
    c.close()


def test_empty_command_packet_closes_with_error(proxy):
    c = RawClient(proxy.port)
    assert c.login("alice", "alice-pw-1")[:1] == b"\x00"
    err = as_error(c.command(b""))
    assert "empty command" in err.message
    assert c.closed()


def test_packet_over_max_allowed_packet(private_proxy):
    p = private_proxy(max_allowed_packet=4096)
    conn = pymysql.connect(host="127.0.0.1", port=p.port, user="alice", password="alice-pw-1")
    with pytest.raises(pymysql.err.OperationalError) as err, conn.cursor() as cur:
        cur.execute("SELECT '" + "x" * 10000 + "'")
    assert err.value.args[0] in (1153, 2013)
    proxy_still_serves(p)
    assert "max_allowed_packet" in p.log()


def test_handshake_timeout(private_proxy):
    p = private_proxy(handshake_timeout=0.5)
    c = RawClient(p.port)
    c.read_greeting()
    err = c.read_error()  # waits for the timeout
    assert err.code == 1043 and "timed out" in err.message
    assert c.closed()
    assert "handshake timed out" in p.log()


def test_idle_timeout(private_proxy):
    p = private_proxy(idle_timeout=1)
    conn = pymysql.connect(host="127.0.0.1", port=p.port, user="alice", password="alice-pw-1")
    time.sleep(2.5)
    with pytest.raises(pymysql.err.OperationalError) as err, conn.cursor() as cur:
        cur.execute("SELECT 1")
    assert err.value.args[0] in (4031, 2013)
    assert "idle_timeout" in p.log()
    proxy_still_serves(p)


def test_client_vanishing_mid_result(proxy):
    c = RawClient(proxy.port)
    assert c.login("alice", "alice-pw-1")[:1] == b"\x00"
    c.seq = 0
    c.write_packet(b"\x03SELECT seq, REPEAT('x', 200) FROM seq_1_to_2000000")
    c.sock.recv(1000)
    c.sock.close()
    proxy_still_serves(proxy)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "client_gone" not in proxy.log():
        time.sleep(0.1)
    assert "client_gone" in proxy.log()


def test_backend_down(mariadb, tmp_path):
    p = ProxyProcess(tmp_path / "p", mariadb, upstream_port=free_port())
    p.start()
    try:
        with pytest.raises(pymysql.err.OperationalError) as err:
            pymysql.connect(host="127.0.0.1", port=p.port, user="alice", password="alice-pw-1")
        code, message = err.value.args
        assert code == 4690
        assert "backend 'main' is unavailable" in message
    finally:
        p.stop()


def _refusing_backend(port: int, stop: threading.Event) -> None:
    """A 'database' that answers every connection with ERROR 1040 Too many connections."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen()
    srv.settimeout(0.2)
    payload = b"\xff\x10\x04Too many connections"
    while not stop.is_set():
        try:
            conn, _ = srv.accept()
        except TimeoutError:
            continue
        conn.sendall(len(payload).to_bytes(3, "little") + b"\x00" + payload)
        conn.close()
    srv.close()


def test_backend_refuses(mariadb, tmp_path):
    port = free_port()
    stop = threading.Event()
    t = threading.Thread(target=_refusing_backend, args=(port, stop), daemon=True)
    t.start()
    p = ProxyProcess(tmp_path / "p", mariadb, upstream_port=port)
    p.start()
    try:
        with pytest.raises(pymysql.err.OperationalError) as err:
            pymysql.connect(host="127.0.0.1", port=p.port, user="alice", password="alice-pw-1")
        code, message = err.value.args
        assert code == 4690 and "Too many connections" in message
    finally:
        p.stop()
        stop.set()
        t.join()


class Statement(threading.Thread):
    """A statement run on ``conn`` in a thread; ``error`` is what the client got."""

    def __init__(self, conn, sql: str) -> None:
        super().__init__()
        self.conn, self.sql = conn, sql
        self.error: pymysql.err.MySQLError | None = None
        self.start()

    def run(self) -> None:
        try:
            with self.conn.cursor() as cur:
                cur.execute(self.sql)
        except pymysql.err.MySQLError as exc:
            self.error = exc

    def told_backend_lost(self) -> None:
        """The client got myguard's error for a lost backend connection, in time."""
        self.join(15)
        assert not self.is_alive() and self.error is not None
        code, message = self.error.args
        assert code == 2013
        assert "lost connection to backend 'main'" in message


def estimate_rules(path, table: str, rows_over: int):
    """Rules that block reads of ``table`` estimated above ``rows_over`` rows: myguard asks
    the backend (EXPLAIN) before the statement."""
    path.write_text(
        '[defaults]\naction = "allow"\n\n[[rules]]\nname = "estimated"\naction = "block"\n'
        f'message = "too many rows"\n[rules.when]\ntables = ["{table}"]\n'
        f"rows_over = {rows_over}\n"
    )
    return path


def wait_for_explain_on_lock(db) -> None:
    """Until myguard's EXPLAIN waits for the table lock another session holds."""
    deadline = time.monotonic() + 10
    waiting = ""
    while "EXPLAIN" not in waiting and time.monotonic() < deadline:
        time.sleep(0.05)
        waiting = db.sql(
            "SELECT INFO FROM information_schema.PROCESSLIST"
            " WHERE STATE = 'Waiting for table metadata lock'"
        )
    assert "EXPLAIN" in waiting, "the estimate never waited for the lock"


def test_backend_dies_mid_query(tmp_path):
    db = MariaDBServer(tmp_path / "db")
    db.start()
    db.seed()
    p = ProxyProcess(tmp_path / "p", db)
    p.start()
    try:
        conn = pymysql.connect(host="127.0.0.1", port=p.port, user="alice", password="alice-pw-1")
        slow = Statement(conn, "SELECT SLEEP(20)")
        time.sleep(0.5)
        db.kill()
        slow.told_backend_lost()
        assert "backend_lost" in p.log()
        db.start()
        proxy_still_serves(p)
    finally:
        p.stop()
        db.stop()


def test_backend_dies_while_myguard_asks_it_before_a_statement(tmp_path):
    """The backend dies while the session task itself waits on it (here the EXPLAIN a
    rows_over rule needs, stuck behind another session's table lock): the client gets
    myguard's lost-connection error, and the log names the backend, not the client."""
    db = MariaDBServer(tmp_path / "db")
    db.start()
    db.seed()
    db.sql("CREATE DATABASE faults; CREATE TABLE faults.t (id INT) ENGINE=InnoDB")
    rules = estimate_rules(tmp_path / "estimate.toml", "faults.t", 1000000)
    p = ProxyProcess(tmp_path / "p", db, rules_file=rules)
    p.start()
    try:
        locker = pymysql.connect(
            host="127.0.0.1", port=db.port, user="root", password=ROOT_PASSWORD
        )
        with locker.cursor() as cur:
            cur.execute("LOCK TABLES faults.t WRITE")
        conn = pymysql.connect(
            host="127.0.0.1", port=p.port, user="alice", password="alice-pw-1", read_timeout=20
        )
        estimated = Statement(conn, "SELECT * FROM faults.t")
        wait_for_explain_on_lock(db)
        db.kill()
        estimated.told_backend_lost()
        log = p.log()
        assert "event=backend_lost" in log and 'user=alice reason="backend lost: ' in log
    finally:
        p.stop()
        db.stop()


def test_a_client_gone_while_myguard_asks_the_backend_ends_its_session(
    private_proxy, mariadb, tmp_path
):
    """The client disconnects while the session task waits on the backend for it (the
    EXPLAIN a rows_over rule needs, behind a table lock), and its statement is then
    refused: the session ends and frees its backend connection, rather than waiting
    forever for commands on a socket that is gone."""
    mariadb.sql(
        "CREATE DATABASE IF NOT EXISTS faults_gone;"
        "CREATE OR REPLACE TABLE faults_gone.t (id INT) ENGINE=InnoDB;"
        "INSERT INTO faults_gone.t VALUES (1), (2);"
    )
    rules = estimate_rules(tmp_path / "estimate.toml", "faults_gone.t", 0)
    p = private_proxy(rules_file=rules, workers=1)
    locker = pymysql.connect(
        host="127.0.0.1", port=mariadb.port, user="root", password=ROOT_PASSWORD
    )
    try:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLES faults_gone.t WRITE")
        client = RawClient(p.port)
        assert client.login("alice", "alice-pw-1")[0] == 0
        client.seq = 0
        client.write_packet(b"\x03SELECT * FROM faults_gone.t")
        wait_for_explain_on_lock(mariadb)
        client.close()
        time.sleep(0.3)
        with locker.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        deadline = time.monotonic() + 5
        while 'user=alice reason="client gone' not in p.log():
            assert time.monotonic() < deadline, "the session outlived its client"
            time.sleep(0.05)
    finally:
        locker.close()
        mariadb.sql("DROP DATABASE faults_gone")
