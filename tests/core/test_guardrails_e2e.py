"""The default guardrail pack through real clients, observe mode, and reload under load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiomysql
import mysql.connector
import MySQLdb
import pymysql
import pytest
from pymysql.constants import CLIENT

RULES = Path(__file__).resolve().parents[2] / "conf" / "rules.toml"
BLOCKED = 4700


@pytest.fixture(scope="module")
def prod(mariadb, tmp_path_factory):
    from proxy_process import ProxyProcess

    p = ProxyProcess(tmp_path_factory.mktemp("prod"), mariadb, environment="production")
    p.start()
    yield p
    p.stop()


def pm(proxy, user="alice", password="alice-pw-1", **kw):
    return pymysql.connect(
        host="127.0.0.1", port=proxy.port, user=user, password=password, database="shop", **kw
    )


def blocked(callable_, *args):
    with pytest.raises(Exception) as err:
        callable_(*args)
    return err.value


def test_drop_table_blocked_in_production_with_a_clear_message(prod, mariadb):
    conn = pm(prod)
    with conn.cursor() as cur:
        err = blocked(cur.execute, "DROP TABLE orders")
        code, message = err.args
        assert code == BLOCKED
        assert message == (
            "myguard: blocked by rule 'no-drop-in-production': "
            "DROP/TRUNCATE of tables and databases is not allowed in production"
        )
        cur.execute("SELECT COUNT(*) FROM orders")  # the session stays usable
        assert cur.fetchone()[0] == 9
    assert mariadb.sql("SELECT COUNT(*) FROM shop.orders").strip() == "9"


def test_sqlstate_is_42000(prod):
    conn = mysql.connector.connect(
        host="127.0.0.1", port=prod.port, user="alice", password="alice-pw-1", database="shop"
    )
    cur = conn.cursor()
    err = blocked(cur.execute, "TRUNCATE TABLE orders")
    assert err.errno == BLOCKED and err.sqlstate == "42000"
    assert "no-drop-in-production" in err.msg
    conn.close()


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("DELETE FROM orders", "no-unbounded-writes"),
        ("UPDATE orders SET quantity = 0 WHERE 1=1", "no-unbounded-writes"),
        ("GRANT ALL ON *.* TO 'x'@'%'", "no-privilege-changes"),
        ("SELECT * FROM customers INTO OUTFILE '/tmp/leak.csv'", "no-file-export"),
        ("LOAD DATA INFILE '/etc/passwd' INTO TABLE orders", "no-load-data"),
        ("/*!50000 DROP TABLE orders */", "no-drop-in-production"),
        ("DrOp   TaBlE `shop`.`orders`", "no-drop-in-production"),
        ("PREPARE s FROM 'DROP TABLE orders'", "no-drop-in-production"),
        ("CALL some_procedure()", "no-opaque-in-production"),
        ("SELEKT garbage FROM", "unparsed"),
    ],
)
def test_default_pack_blocks(prod, sql, rule):
    conn = pm(prod)
    with conn.cursor() as cur:
        code, message = blocked(cur.execute, sql).args
    assert code == BLOCKED
    assert f"rule '{rule}'" in message


def test_multi_statement_smuggling_a_drop_runs_nothing(prod, mariadb):
    conn = pm(prod, client_flag=CLIENT.MULTI_STATEMENTS)
    with conn.cursor() as cur:
        code, message = blocked(
            cur.execute, "UPDATE orders SET quantity = 99 WHERE id = 1; DROP TABLE orders"
        ).args
        assert code == BLOCKED and "no-drop-in-production" in message
    assert mariadb.sql("SELECT quantity FROM shop.orders WHERE id = 1").strip() == "1"


def test_ai_agents_cannot_write_in_production(prod):
    conn = pm(prod, "bot", "bot-pw-9")
    with conn.cursor() as cur:
        code, message = blocked(cur.execute, "UPDATE orders SET status = 'paid' WHERE id = 3").args
        assert code == BLOCKED and "ai-agents-read-only-in-production" in message
        cur.execute("SELECT COUNT(*) FROM orders")
        assert cur.fetchone()[0] == 9


def test_prepared_statement_blocked_at_prepare(prod):
    conn = mysql.connector.connect(
        host="127.0.0.1", port=prod.port, user="alice", password="alice-pw-1", database="shop"
    )
    cur = conn.cursor(prepared=True)
    err = blocked(cur.execute, "DELETE FROM orders WHERE 1 = ?", (1,))
    assert err.errno == BLOCKED and "no-unbounded-writes" in err.msg
    cur.execute("SELECT item FROM orders WHERE id = ?", (2,))
    assert cur.fetchall() == [("Punch cards (box)",)]
    conn.close()


def test_mysqlclient_and_cli_see_the_block(prod):
    conn = MySQLdb.connect(
        host="127.0.0.1", port=prod.port, user="alice", password="alice-pw-1", database="shop"
    )
    cur = conn.cursor()
    err = blocked(cur.execute, "DROP DATABASE shop")
    assert err.args[0] == BLOCKED
    r = subprocess.run(
        [
            "mariadb",
            "-h127.0.0.1",
            f"-P{prod.port}",
            "-ualice",
            "-palice-pw-1",
            "shop",
            "-e",
            "DROP TABLE orders",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert f"ERROR {BLOCKED} (42000) at line 1: myguard: blocked by rule" in r.stderr
    assert "no-drop-in-production" in r.stderr


def test_aiomysql_sees_the_block(prod):
    import asyncio

    async def run():
        conn = await aiomysql.connect(
            host="127.0.0.1", port=prod.port, user="alice", password="alice-pw-1", db="shop"
        )
        async with conn.cursor() as cur:
            with pytest.raises(pymysql.err.MySQLError) as err:
                await cur.execute("TRUNCATE orders")
            await cur.execute("SELECT 1")
            assert await cur.fetchone() == (1,)
        conn.close()
        return err.value.args

    code, message = asyncio.run(run())
    assert code == BLOCKED and "no-drop-in-production" in message


def test_development_allows_what_production_blocks(proxy, mariadb):
    conn = pymysql.connect(
        host="127.0.0.1", port=proxy.port, user="alice", password="alice-pw-1", database="test"
    )
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE guard_dev (id INT)")
        cur.execute("DROP TABLE guard_dev")


OBSERVE_RULES = """
[defaults]
action = "allow"

[[rules]]
name = "watch-orders"
action = "block"
mode = "observe"
message = "would block"
[rules.when]
tables = ["shop.orders"]
"""


def test_observe_mode_lets_through_and_logs(private_proxy, tmp_path):
    rules = tmp_path / "observe.toml"
    rules.write_text(OBSERVE_RULES)
    p = private_proxy(rules_file=rules)
    conn = pm(p)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM orders")
        assert cur.fetchone()[0] == 9
    assert "event=rule_observed" in p.log() and "rule=watch-orders would=block" in p.log()


def test_reload_under_load_drops_no_session(private_proxy, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES.read_text())
    p = private_proxy(rules_file=rules, environment="production")
    stop = threading.Event()
    errors: list[Exception] = []
    counts = [0] * 4

    def load(i):
        conn = pm(p)
        try:
            with conn.cursor() as cur:
                while not stop.is_set():
                    cur.execute("SELECT id FROM customers WHERE id = 1")
                    counts[i] += 1
        except Exception as exc:  # any error here is a dropped or broken session
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    conn = pm(p)
    rules.write_text(
        RULES.read_text()
        + '\n[[rules]]\nname = "no-orders-today"\naction = "block"\nmessage = "orders are closed"\n'
        '[rules.when]\ntables = ["shop.orders"]\n'
    )
    os.kill(p.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + 10
    with conn.cursor() as cur:
        while True:
            try:
                cur.execute("SELECT COUNT(*) FROM orders")
            except pymysql.err.MySQLError as exc:
                assert "no-orders-today" in exc.args[1]
                break
            assert time.monotonic() < deadline, "the new rule never applied"
            time.sleep(0.05)
    # A broken file keeps the rules in force, and says why.
    rules.write_text("[[rules]]\nname = 'x'\naction = 'explode'\n")
    r = subprocess.run(
        [sys.executable, "-m", "myguard", "reload", "--config", str(p.config_file)],
        capture_output=True,
        text=True,
        env=p.db.env(),
    )
    assert r.returncode == 1 and "old rules stay in force" in r.stderr
    assert "event=reload_failed" in p.log()
    with conn.cursor() as cur:
        with pytest.raises(pymysql.err.MySQLError):
            cur.execute("SELECT COUNT(*) FROM orders")
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert all(c > 0 for c in counts)
