"""Every login and statement through myguard is recorded, verifiably; the trail fails closed."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import mysql.connector
import pymysql
import pytest

from mariadb_server import free_port
from myguard.audit import iter_records, verify
from myguard.policy.cache import statement_fingerprint
from proxy_process import ProxyProcess


def records(proxy, kind=None):
    return [r for r in iter_records(proxy.audit_dir) if kind is None or r.type == kind]


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def connect(proxy, user="alice", password="alice-pw-1"):
    return pymysql.connect(
        host="127.0.0.1", port=proxy.port, user=user, password=password, database="shop"
    )


def test_logins_statements_and_session_end_are_recorded(private_proxy):
    p = private_proxy(environment="production")
    conn = connect(p, "bob", "bob-pw-2")
    with conn.cursor() as cur:
        cur.execute(
            "SELECT o.id, o.total FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.id < 4"
        )
        assert len(cur.fetchall()) == 3
        cur.execute("UPDATE orders SET quantity = quantity WHERE id = 2")
        with pytest.raises(pymysql.err.MySQLError):
            cur.execute("DROP TABLE orders")
    conn.close()
    with pytest.raises(pymysql.err.OperationalError):
        connect(p, "bob", "not-his")
    wait_for(lambda: len(records(p, "session_end")) >= 1 and len(records(p, "login")) == 2)

    logins = records(p, "login")
    assert [(r["user"], r["success"]) for r in logins] == [("bob", True), ("bob", False)]
    assert logins[0]["groups"] == ["analysts"]
    assert logins[0]["client_attributes"]["_client_name"] == "pymysql"
    assert logins[1].get("reason") == "wrong password"
    assert logins[0]["source_address"] == "127.0.0.1"

    statements = [
        r for r in records(p, "statement") if not r["statement"].upper().startswith("SET ")
    ]
    select, update, drop = statements
    assert select["statement"].startswith("SELECT o.id")
    # bob has a mask rule: his statements go through lineage (no column here was masked)
    assert select["decision"] == "mask" and select["kind"] == "select"
    assert select["rule"] == "mask-pii-for-analysts" and not select.get("masked_columns")
    assert select["tables_read"] == ["shop.customers", "shop.orders"]
    assert select["rows_returned"] == 3
    assert select["environment"] == "production" and select["backend"] == "main"
    assert update["kind"] == "update" and update["tables_written"] == ["shop.orders"]
    assert update.get("rows_affected") == 0
    assert drop["decision"] == "block" and drop["rule"] == "no-drop-in-production"
    assert drop["error_code"] == 4700
    assert all(r["session_id"] == select["session_id"] for r in statements)
    # each record names the statement's shape: its fingerprint, as the policy cache keys it
    assert all(r["fingerprint"] == statement_fingerprint(r["statement"]) for r in statements)
    assert verify(p.audit_dir).ok


def test_always_mode_writes_the_intent_before_the_statement(private_proxy):
    p = private_proxy(audit={"fsync": "always"})
    conn = connect(p)
    with conn.cursor() as cur:
        cur.execute("SELECT 1")

    def mine():
        return [
            r
            for r in records(p)
            if r.type in ("statement_intent", "statement") and r["statement"] == "SELECT 1"
        ]

    wait_for(lambda: len(mine()) == 2)
    intent, done = mine()
    assert (intent.type, done.type) == ("statement_intent", "statement")
    assert done["intent_id"] == intent["intent_id"]


def test_always_mode_writes_the_intent_of_every_prepared_execution_first(private_proxy):
    """The binary protocol too (mysql-connector, JDBC's server-side statements): each
    execution of a prepared statement is forwarded after its intent record, not only the
    first, and not straight from the compiled core."""
    p = private_proxy(audit={"fsync": "always"})
    conn = mysql.connector.connect(
        host="127.0.0.1", port=p.port, user="alice", password="alice-pw-1", database="shop"
    )
    cur = conn.cursor(prepared=True)
    for n in range(3):
        cur.execute("SELECT ? + 40", (n,))
        assert cur.fetchall() == [(n + 40,)]
    conn.close()

    def mine():
        return [
            r
            for r in records(p)
            if r.type in ("statement_intent", "statement") and r["statement"] == "SELECT ? + 40"
        ]

    wait_for(lambda: sum(bool(r.get("intent_id")) for r in mine()) == 6)
    done = [r for r in mine() if r.type == "statement" and r.get("intent_id")]
    intents = [r for r in mine() if r.type == "statement_intent"]
    assert [r["intent_id"] for r in done] == [r["intent_id"] for r in intents]
    order = [(r.type, r.get("intent_id")) for r in mine() if r.get("intent_id")]
    for intent in intents:  # each intent is in the trail before its statement
        iid = intent["intent_id"]
        assert order.index(("statement_intent", iid)) < order.index(("statement", iid))


def test_always_mode_writes_the_intent_of_a_database_change_by_command(private_proxy):
    """COM_INIT_DB (PyMySQL's select_db, the CLI's "use") is recorded as ``USE `db```
    and, like a statement, forwarded after its intent record."""
    p = private_proxy(audit={"fsync": "always"})
    conn = connect(p)
    conn.select_db("test")
    with conn.cursor() as cur:
        cur.execute("SELECT DATABASE()")
        assert cur.fetchone() == ("test",)

    def mine():
        return [
            r
            for r in records(p)
            if r.type in ("statement_intent", "statement") and r["statement"] == "USE `test`"
        ]

    wait_for(lambda: len(mine()) == 2)
    intent, done = mine()
    assert (intent.type, done.type) == ("statement_intent", "statement")
    assert done["intent_id"] == intent["intent_id"]


def test_kill_9_under_load_then_verify_and_no_acknowledged_statement_lost(mariadb, tmp_path):
    p = ProxyProcess(tmp_path / "p", mariadb, audit={"fsync": "always"})
    p.start()
    acknowledged: list[str] = []
    stop = threading.Event()

    def load(n):
        conn = connect(p)
        i = 0
        try:
            with conn.cursor() as cur:
                while not stop.is_set():
                    marker = f"w{n}-{i}"
                    cur.execute(f"SELECT '{marker}'")
                    acknowledged.append(marker)
                    i += 1
        except pymysql.err.MySQLError:
            pass

    threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    p.proc.kill()
    p.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    p.proc = None
    p.start()  # the writer repairs the torn tail and records the restart
    p.stop()
    report = verify(p.audit_dir)
    assert report.ok, report.problem
    texts = {r["statement"] for r in records(p) if r.type in ("statement_intent", "statement")}
    missing = [m for m in acknowledged if f"SELECT '{m}'" not in texts]
    assert acknowledged and not missing
    assert any(r.type == "restart" for r in records(p))


@pytest.fixture()
def tiny_fs(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    assert r.returncode == 0, f"cannot mount a tmpfs (tests run as root): {r.stderr.decode()}"
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_refuses_statements_then_recovers(mariadb, tmp_path, tiny_fs):
    p = ProxyProcess(
        tmp_path / "p", mariadb, audit={"directory": str(tiny_fs / "audit"), "fsync": "always"}
    )
    p.audit_dir = tiny_fs / "audit"
    p.start()
    try:
        filler = tiny_fs / "filler"
        filler.write_bytes(b"\0" * (4 * 1024 * 1024 - 96 * 1024))
        conn = connect(p)
        with conn.cursor() as cur:
            big = "x" * 30000
            refused = None
            for _ in range(200):
                try:
                    cur.execute(f"SELECT '{big}'")
                except pymysql.err.MySQLError as exc:
                    refused = exc
                    break
            assert refused is not None, "the audit trail never filled up"
            assert refused.args[0] == 4693
            assert "audit trail cannot be written" in refused.args[1]
            filler.unlink()
            deadline = time.monotonic() + 15
            while True:
                try:
                    cur.execute("SELECT 'after recovery'")
                    break
                except pymysql.err.MySQLError:
                    assert time.monotonic() < deadline, "never recovered"
                    time.sleep(0.2)
        p.stop()
        assert verify(p.audit_dir).ok
    finally:
        p.stop()


def test_audit_cli_reads_the_trail(private_proxy):
    p = private_proxy()
    conn = connect(p)
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM customers WHERE id = 1")
    wait_for(lambda: any(r["statement"].startswith("SELECT id") for r in records(p, "statement")))
    out = subprocess.run(
        [sys.executable, "-m", "myguard", "audit", "tail", str(p.audit_dir), "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert '"statement": "SELECT id FROM customers WHERE id = 1"' in out
    r = subprocess.run(
        [sys.executable, "-m", "myguard", "audit", "verify", str(p.audit_dir)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert free_port() and os.path.isdir(p.audit_dir)
