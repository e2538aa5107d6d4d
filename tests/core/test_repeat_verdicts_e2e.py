"""A query whose shape went straight through before is decided from the session's map by
fingerprint (handler._repeat): that shortcut must follow every change that can change the
decision: the database the session is in, a reloaded policy, observe-mode rules."""

from __future__ import annotations

import os
import signal
import time

import pymysql
import pytest

from myguard.audit import iter_records

RULES = """
[defaults]
action = "allow"

[[rules]]
name = "no-shop-orders"
action = "block"
message = "shop.orders is closed"
[rules.when]
tables = ["shop.orders"]
"""
BLOCKED = 4700


@pytest.fixture(scope="module")
def other_orders(mariadb):
    mariadb.sql(
        "CREATE DATABASE IF NOT EXISTS repeat_other;"
        "CREATE TABLE IF NOT EXISTS repeat_other.orders (id INT PRIMARY KEY);"
        "REPLACE INTO repeat_other.orders VALUES (1), (2), (3);"
    )
    yield
    mariadb.sql("DROP DATABASE repeat_other")


def connect(proxy, database: str, autocommit: bool = True):
    return pymysql.connect(
        host="127.0.0.1", port=proxy.port, user="alice", password="alice-pw-1",
        database=database, autocommit=autocommit,
    )  # fmt: skip


def statement_records(proxy, text: str, count: int) -> list:
    """The statement records whose text holds ``text``, once ``count`` are written (or 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        records = [
            r for r in iter_records(proxy.audit_dir)
            if r.type == "statement" and text in r.get("statement", "")
        ]  # fmt: skip
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def test_the_same_shape_in_another_database_is_decided_again(private_proxy, tmp_path, other_orders):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    p = private_proxy(rules_file=rules)
    conn = connect(p, "repeat_other")
    with conn.cursor() as cur:
        for n in range(3):  # the shape is remembered as allowed in repeat_other
            cur.execute(f"SELECT COUNT(*) FROM orders WHERE id > {n}")
            assert cur.fetchone() == (3 - n,)
        cur.execute("USE shop")
        with pytest.raises(pymysql.err.MySQLError) as err:
            cur.execute("SELECT COUNT(*) FROM orders WHERE id > 7")
        assert err.value.args[0] == BLOCKED and "shop.orders is closed" in err.value.args[1]
        cur.execute("USE repeat_other")
        cur.execute("SELECT COUNT(*) FROM orders WHERE id > 2")
        assert cur.fetchone() == (1,)
    conn.close()
    blocked = [r for r in p.audit_records() if r.get("error_code") == BLOCKED]
    assert [r["statement"] for r in blocked] == ["SELECT COUNT(*) FROM orders WHERE id > 7"]


def test_a_reloaded_policy_decides_a_remembered_shape_again(private_proxy, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[defaults]\naction = "allow"\n')
    p = private_proxy(rules_file=rules)
    conn = connect(p, "shop")
    with conn.cursor() as cur:
        for n in range(3):
            cur.execute(f"SELECT id FROM orders WHERE id = {n + 1}")
            assert cur.fetchone() == (n + 1,)
        rules.write_text(RULES)
        os.kill(p.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while True:
            try:
                cur.execute("SELECT id FROM orders WHERE id = 4")
            except pymysql.err.MySQLError as exc:
                assert exc.args[0] == BLOCKED
                break
            assert cur.fetchone() == (4,)
            assert time.monotonic() < deadline, "the reloaded rule never applied"
            time.sleep(0.05)
    conn.close()


def test_observed_rules_are_logged_for_every_statement_of_a_shape(private_proxy, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.replace('action = "block"', 'action = "block"\nmode = "observe"'))
    p = private_proxy(rules_file=rules)
    conn = connect(p, "shop")
    with conn.cursor() as cur:
        for n in range(4):
            cur.execute(f"SELECT id FROM orders WHERE id = {n + 1}")
    conn.close()
    assert p.log().count("event=rule_observed") == 4


def test_statements_the_core_forwards_itself_are_audited_in_full(private_proxy):
    """Repeated query shapes and executions of a prepared statement are forwarded by the
    proxy core on a taught verdict: each still gets its whole audit record."""
    import mysql.connector

    p = private_proxy()
    conn = connect(p, "shop")
    with conn.cursor() as cur:
        for n in range(1, 5):
            cur.execute(f"SELECT id FROM orders WHERE id <= {n}")
            cur.fetchall()
    conn.close()
    ps = mysql.connector.connect(
        host="127.0.0.1", port=p.port, user="alice", password="alice-pw-1", database="shop"
    )
    cur = ps.cursor(prepared=True)
    rows = []
    for n in range(1, 5):
        cur.execute("SELECT id FROM orders WHERE id <= ?", (n,))
        rows.append(len(cur.fetchall()))
    cur.execute("SELECT id FROM orders WHERE id = ?", (999,))
    assert cur.fetchall() == []
    ps.close()
    records = statement_records(p, "FROM orders WHERE id", 9)
    text, prepared = records[:4], records[4:]
    assert [r["statement"] for r in text] == [
        f"SELECT id FROM orders WHERE id <= {n}" for n in range(1, 5)
    ]
    assert [r["statement"] for r in prepared[:4]] == ["SELECT id FROM orders WHERE id <= ?"] * 4
    assert [r["rows_returned"] for r in prepared[:4]] == rows
    assert prepared[4]["rows_returned"] == 0
    for group in (text, prepared[:4]):
        assert len({r["fingerprint"] for r in group}) == 1
        for r in group:
            assert r["user"] == "alice" and r["database"] == "shop" and r["decision"] == "allow"
            assert r["duration"] >= 0 and r["started_at"] > 0 and r["session_id"]


def test_a_verdict_one_session_taught_serves_only_sessions_of_its_identity_context(
    private_proxy, tmp_path, other_orders, mariadb
):
    """Connections opened per request send each shape once: the core forwards a shape
    another session with an equal identity context taught (same user, groups, database,
    policy...). Never across identity contexts: another database, or a user whose results
    are masked, is decided for itself."""
    rules = tmp_path / "rules.toml"
    rules.write_text(
        RULES
        + '\n[tags]\npii = ["shop.customers.email"]\n'
        + '[[rules]]\nname = "mask-bob"\naction = "mask"\n'
        + '[rules.when]\nusers = ["bob"]\ntags = ["pii"]\n[rules.mask]\npii = "redact"\n'
    )
    p = private_proxy(rules_file=rules)
    (email,) = mariadb.sql("SELECT email FROM shop.customers WHERE id = 1").split()
    for n in range(4):  # taught by the first, forwarded by the core for the others
        conn = connect(p, "repeat_other")
        with conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM orders WHERE id > {n}")
            assert cur.fetchone() == (3 - n,)
            cur.execute("SELECT email FROM shop.customers WHERE id = 1 AND 1 = 1")
            assert cur.fetchone() == (email,)
        conn.close()
    conn = connect(p, "shop")  # the same user in another database
    with conn.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as err:
        cur.execute("SELECT COUNT(*) FROM orders WHERE id > 5")
    assert err.value.args[0] == BLOCKED
    conn.close()
    bob = pymysql.connect(
        host="127.0.0.1", port=p.port, user="bob", password="bob-pw-2", database="repeat_other"
    )
    with bob.cursor() as cur:
        cur.execute("SELECT email FROM shop.customers WHERE id = 1 AND 1 = 1")
        assert cur.fetchone()[0] != email
    bob.close()
    records = statement_records(p, "FROM orders WHERE id >", 5)
    allowed = records[:4]
    assert len({r["session_id"] for r in allowed}) == 4
    assert len({r["fingerprint"] for r in allowed}) == 1
    for n, r in enumerate(allowed):
        assert r["statement"] == f"SELECT COUNT(*) FROM orders WHERE id > {n}"
        assert (r["user"], r["database"], r["decision"], r["rows_returned"]) == (
            "alice", "repeat_other", "allow", 1,
        )  # fmt: skip
    assert records[4]["error_code"] == BLOCKED


def test_a_login_s_set_autocommit_is_recorded_for_each_session(private_proxy):
    """Drivers send ``SET AUTOCOMMIT = 0`` at every login (PyMySQL by default): a quiet
    statement, so after the first session taught it the core forwards it and writes each
    session's record with that session's own fields (its first statement of that shape)."""
    p = private_proxy()
    sessions = []
    for _ in range(3):
        conn = connect(p, "shop", autocommit=False)  # PyMySQL's default: SET AUTOCOMMIT = 0
        with conn.cursor() as cur:
            cur.execute("SELECT @@autocommit, CONNECTION_ID()")
            autocommit, session_id = cur.fetchone()
            assert autocommit == 0
            cur.execute('SELECT "x"')  # still read as the session's sql_mode reads it
            assert cur.fetchone() == ("x",)
        sessions.append(str(session_id))
        conn.close()
    records = statement_records(p, "SET AUTOCOMMIT = 0", 3)
    assert [r["session_id"] for r in records] == sessions
    for r in records:
        assert (r["statement"], r["user"], r["database"], r["decision"]) == (
            "SET AUTOCOMMIT = 0", "alice", "shop", "allow",
        )  # fmt: skip
        assert r["fingerprint"] == records[0]["fingerprint"] and r["duration"] >= 0
