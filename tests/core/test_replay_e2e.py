"""``myguard rules replay`` of a real trail against the rules that wrote it: no difference.

A real myguard with two backends (production and development) records allowed, masked,
blocked, held (approved and timed out) and refused statements, text and prepared, of a
dba, an analyst with masking and a user without groups. Replayed against the same rules
through the real CLI, nothing differs; with one rule changed, exactly the statements
that rule decided are reported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import mysql.connector
import pymysql
import pytest

from mariadb_server import SERVICE_USER, free_port
from myguard.audit import iter_records
from myguard.policy.replay import ESTIMATE
from proxy_process import ProxyProcess

RULES = """
[defaults]
action = "allow"

[tags]
pii = ["shop.customers.name", "shop.customers.email", "shop.customers.phone"]

[[rules]]
name = "no-drop-in-production"
action = "block"
message = "no DROP in production"
[rules.when]
environments = ["production"]
kinds = ["drop:table", "drop:database", "truncate"]

[[rules]]
name = "unparsed-in-development"
action = "allow"
[rules.when]
environments = ["development"]
unparsed = true

[[rules]]
name = "mask-pii-for-analysts"
action = "mask"
[rules.when]
groups = ["analysts"]
tags = ["pii"]
[rules.mask]
"shop.customers.email" = "email"
pii = "redact"

[[rules]]
name = "approve-production-ddl"
action = "approve"
[rules.when]
environments = ["production"]
kinds = ["ddl"]
not_groups = ["dba"]
[rules.approval]
approver_groups = ["dba"]
hold_seconds = 30

[[rules]]
name = "approve-order-updates"
action = "approve"
[rules.when]
kinds = ["update"]
tables = ["shop.orders"]
[rules.approval]
approver_groups = ["dba"]
hold_seconds = 1

[[rules]]
name = "big-deletes-need-approval"
action = "approve"
[rules.when]
kinds = ["delete"]
tables = ["test.*"]
rows_over = 1000
[rules.approval]
approver_groups = ["dba"]
hold_seconds = 1
"""

PASSWORDS = {"alice": "alice-pw-1", "bob": "bob-pw-2", "carol": "carol-pw-3"}


class TwoBackends(ProxyProcess):
    """A myguard with a second backend, ``replica`` in development, on its own port."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.replica_port = free_port()
        super().__init__(*args, **kwargs)

    def write_config(self) -> None:
        super().write_config()
        with self.config_file.open("a") as config:
            config.write(
                '\n[[backends]]\nname = "replica"\nenvironment = "development"\n'
                f'listen = "127.0.0.1:{self.replica_port}"\n'
                f'upstream = "127.0.0.1:{self.upstream_port}"\n'
                f'user = "{SERVICE_USER}"\npassword_env = "MYGUARD_SVC_PASSWORD"\n'
            )

    def listeners_expected(self) -> int:
        return super().listeners_expected() + 1


def connect(port: int, user: str, **kw: object) -> pymysql.Connection:
    return pymysql.connect(
        host="127.0.0.1",
        port=port,
        user=user,
        password=PASSWORDS[user],
        database="shop",
        autocommit=True,
        **kw,
    )


def refused(cur: object, sql: str, *params: object) -> int:
    """Run ``sql``, which must fail; its error code."""
    with pytest.raises((pymysql.err.MySQLError, mysql.connector.Error)) as err:
        cur.execute(sql, params or None)
        cur.fetchall()
    exc = err.value
    return exc.errno if isinstance(exc, mysql.connector.Error) else exc.args[0]


def approve_when_pending(port: int) -> None:
    """alice approves the pending request once it appears (from another session)."""
    conn = connect(port, "alice")
    with conn.cursor() as cur:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            cur.execute("MYGUARD APPROVALS")
            pending = [row for row in cur.fetchall() if row[1] == "pending"]
            if pending:
                cur.execute(f"MYGUARD APPROVE {int(pending[0][0])}")
                break
            time.sleep(0.05)
    conn.close()


def traffic(p: TwoBackends) -> None:
    """Every kind of outcome, from three identities on both backends."""
    prod, dev = p.port, p.replica_port
    alice = connect(prod, "alice")
    with alice.cursor() as cur:
        cur.execute("SELECT name, email FROM customers WHERE id = 1")  # allow
        assert refused(cur, "DROP TABLE test.nope") == 4700
        cur.execute("CREATE TABLE IF NOT EXISTS test.replay_rows (id INT)")  # allow (dba)
        cur.execute("INSERT INTO test.replay_rows VALUES (1), (2), (3)")
        cur.execute("DELETE FROM test.replay_rows WHERE id > 2")  # estimated: allow
        alice.select_db("test")  # COM_INIT_DB, recorded as USE `test`
        cur.execute("SELECT COUNT(*) FROM replay_rows")
        cur.execute("USE shop")
    alice.close()

    bob = connect(prod, "bob")
    with bob.cursor() as cur:
        cur.execute("SELECT id, email FROM customers WHERE id < 3")  # mask
        cur.execute("SELECT id, item FROM orders WHERE id = 1")  # mask (identity)
        assert refused(cur, "SELECT id FROM customers WHERE email LIKE 'a%'") == 4701
        assert refused(cur, "DROP TABLE test.nope") == 4700
        assert refused(cur, "UPDATE orders SET quantity = quantity WHERE id = 1") == 4710
        cur.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',ANSI_QUOTES')")
        assert refused(cur, 'SELECT "email" FROM customers') == 4700  # read as unparsed
    bob.close()
    bob_dev = connect(dev, "bob")
    with bob_dev.cursor() as cur:
        cur.execute("SELECT name FROM customers WHERE id = 2")  # mask, development
        cur.execute("DROP TABLE IF EXISTS test.replay_tmp")  # allowed there: mask
    bob_dev.close()

    carol = connect(prod, "carol")
    approver = threading.Thread(target=approve_when_pending, args=(prod,))
    approver.start()
    with carol.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS test.replay_held (id INT)")  # held, approved
    approver.join()
    with carol.cursor() as cur:
        cur.execute("SELECT email FROM customers WHERE id = 1")  # allow: carol has no mask
    carol.close()
    carol_dev = connect(dev, "carol")
    with carol_dev.cursor() as cur:
        cur.execute("SET SESSION sql_mode = 'ANSI_QUOTES'")
        cur.execute('SELECT "id" FROM customers WHERE id = 1')  # unparsed, allowed there
    carol_dev.close()

    # Server-side prepared statements: decided at PREPARE, recorded at each EXECUTE.
    for user, port in (("bob", prod), ("carol", prod), ("alice", dev)):
        conn = mysql.connector.connect(
            host="127.0.0.1", port=port, user=user, password=PASSWORDS[user], database="shop"
        )
        cur = conn.cursor(prepared=True)
        cur.execute("SELECT id, email FROM customers WHERE id = ?", (1,))
        cur.fetchall()
        if port == prod:
            assert refused(cur, "DROP TABLE test.nope") == 4700
        conn.close()


def replay(p: TwoBackends, rules: object, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "myguard", "rules", "replay", "--audit", str(p.audit_dir)]
        + ["--rules", str(rules), *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_replay_against_its_own_rules_differs_nowhere_and_one_change_exactly(mariadb, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    p = TwoBackends(tmp_path / "p", mariadb, rules_file=rules, environment="production")
    p.start()
    try:
        traffic(p)
    finally:
        p.stop()
        mariadb.sql("DROP TABLE IF EXISTS test.replay_rows; DROP TABLE IF EXISTS test.replay_held")
    statements = [r for r in iter_records(p.audit_dir) if r.type == "statement"]

    # The trail holds what the replay must get right.
    def has(**fields: object) -> bool:
        return any(all(r.get(k) == v for k, v in fields.items()) for r in statements)

    assert {r["decision"] for r in statements} == {"allow", "mask", "block", "approve"}
    assert {r["user"] for r in statements} == {"alice", "bob", "carol"}
    assert {r["backend"] for r in statements} == {"main", "replica"}
    assert has(user="bob", decision="mask", error_code=4701)
    assert has(user="bob", decision="approve", error_code=4710)
    assert has(user="carol", decision="approve", kind="create") and any(
        r.get("approval_id") for r in statements
    )
    assert has(user="bob", decision="block", rule="unparsed", kind="unparsed")
    assert has(user="carol", decision="allow", rule="unparsed-in-development", kind="unparsed")
    # a record carries the database its statement arrived in, before the USE
    assert has(user="alice", statement="USE `test`", database="shop")
    assert has(user="alice", statement="SELECT COUNT(*) FROM replay_rows", database="test")
    assert has(user="alice", statement="USE shop", database="test")
    assert has(user="bob", statement="SELECT id, email FROM customers WHERE id = ?")

    same = replay(p, rules, "--json")
    assert same.returncode == 0, same.stderr
    report = json.loads(same.stdout)
    assert report["differing"] == 0, report["differences"]
    # The DELETE's decision came from an EXPLAIN estimate the trail does not hold: reported
    # as not decided again, never as a difference.
    assert report["not_replayed_by_reason"] == [{"reason": ESTIMATE, "count": 1}]
    assert report["not_replayed_statements"][0]["statement"].startswith("DELETE FROM test.")
    assert report["statements"] == len(statements) - 1
    text = replay(p, rules)
    assert text.returncode == 0, text.stderr
    assert f"{len(statements) - 1} statement(s) in the audit trail replayed" in text.stdout
    assert ": 0 would be decided differently" in text.stdout

    # DROP allowed in production: exactly the statements that rule blocked change.
    changed = tmp_path / "changed.toml"
    changed.write_text(RULES.replace('"drop:table", ', ""))
    result = replay(p, changed, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    blocked = sorted(
        (r["user"], r["statement"]) for r in statements if r.get("rule") == "no-drop-in-production"
    )
    assert len(blocked) == 4
    assert sorted((d["user"], d["statement"]) for d in report["differences"]) == blocked
    assert {(d["user"], d["replayed"]["decision"]) for d in report["differences"]} == {
        ("alice", "allow"),  # a dba
        ("bob", "approve"),  # production DDL of someone outside dba, held
        ("carol", "approve"),
    }
