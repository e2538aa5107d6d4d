"""Operations: worker processes, metrics, health, draining on SIGTERM, config errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pymysql
import pytest

from raw_client import RawClient


def http(proxy, path, method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{proxy.admin_port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def query(proxy, sql="SELECT 1", user="alice", password="alice-pw-1"):
    conn = pymysql.connect(host="127.0.0.1", port=proxy.port, user=user, password=password)
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    conn.close()
    return rows


def test_healthz_and_metrics(proxy):
    query(proxy)
    status, body = http(proxy, "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, body = http(proxy, "/metrics")
    assert status == 200
    for name in (
        "myguard_sessions_open",
        'myguard_logins_total{backend="main",outcome="success"}',
        'myguard_statements_total{command="query",outcome="ok"}',
        'myguard_bytes_total{direction="to_client"}',
        "myguard_backend_connect_seconds_bucket",
        "myguard_statement_seconds_bucket",
        'myguard_policy_cache_lookups_total{result="hit"}',
        'myguard_audit_writers{state="healthy"} 1.0',
        'myguard_audit_writers{state="failed"} 0.0',
        "myguard_audit_ring_pending_bytes",
        "myguard_audit_records_total",
        "myguard_audit_write_failures_total 0.0",
    ):
        assert name in body, name


def test_workers_share_the_port_and_a_dead_worker_is_replaced(private_proxy):
    p = private_proxy(workers=2)
    workers = set()
    for _ in range(40):
        c = RawClient(p.port)
        assert c.login("alice", "alice-pw-1")[:1] == b"\x00"
        workers.add(c.greeting.connection_id >> 24)
        c.close()
    assert workers == {0, 1}
    # Login counts reach Prometheus with each worker's flush, once a second.
    deadline = time.monotonic() + 5
    while True:
        status, body = http(p, "/metrics")
        if 'myguard_logins_total{backend="main",outcome="success"} 40.0' in body:
            break
        assert time.monotonic() < deadline, body
        time.sleep(0.2)
    # The audit chains: each worker's and the supervisor's own (approval steps).
    assert 'myguard_audit_writers{state="healthy"} 3.0' in body
    assert 'myguard_audit_writers{state="failed"} 0.0' in body
    # kill -9 one worker: the supervisor starts another, and clients keep being served.
    pids = [
        int(line.split("pid=")[1].split()[0])
        for line in p.log().splitlines()
        if "event=worker_started" in line
    ]
    os.kill(pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while p.log().count("event=worker_started") < 3:
        assert time.monotonic() < deadline, "the dead worker was not replaced"
        time.sleep(0.1)
    for _ in range(10):
        assert query(p) == ((1,),)
    assert "event=worker_died" in p.log()


def test_reload_through_the_supervisor(private_proxy, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[defaults]\naction = "allow"\n')
    p = private_proxy(workers=2, rules_file=rules)
    assert query(p, "SELECT COUNT(*) FROM shop.orders") == ((9,),)
    rules.write_text(
        '[defaults]\naction = "allow"\n[[rules]]\nname = "no-orders"\naction = "block"\n'
        'message = "closed"\n[rules.when]\ntables = ["shop.orders"]\n'
    )
    status, _ = http(p, "/reload", "POST")
    assert status == 200
    deadline = time.monotonic() + 10
    blocked = 0
    while blocked < 10:  # both workers must have the new rules
        try:
            query(p, "SELECT COUNT(*) FROM shop.orders")
            blocked = 0
        except pymysql.err.MySQLError as exc:
            assert "no-orders" in exc.args[1]
            blocked += 1
        assert time.monotonic() < deadline
    rules.write_text("not toml at all [")
    status, body = http(p, "/reload", "POST")
    assert status == 409 and json.loads(body) == {"reloaded": False}


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_lets_running_statements_finish(private_proxy, workers):
    p = private_proxy(workers=workers, shutdown_timeout=10)
    conn = pymysql.connect(host="127.0.0.1", port=p.port, user="alice", password="alice-pw-1")
    idle = pymysql.connect(host="127.0.0.1", port=p.port, user="bob", password="bob-pw-2")
    result = {}

    def slow():
        with conn.cursor() as cur:
            cur.execute("SELECT SLEEP(1.5), 'done'")
            result["row"] = cur.fetchone()

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    p.proc.send_signal(signal.SIGTERM)
    t.join(15)
    assert result["row"] == (0, "done")
    assert p.proc.wait(20) == 0
    with pytest.raises(pymysql.err.OperationalError):
        idle.cursor().execute("SELECT 1")
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(
            host="127.0.0.1", port=p.port, user="alice", password="alice-pw-1", connect_timeout=2
        )


BASE = """rules_file = "r.toml"
{top}
[audit]
directory = "audit"

[identity]
users_file = "users.toml"

[[backends]]
name = "x"
environment = "production"
listen = "{listen}"
upstream = "127.0.0.1:3306"
user = "svc"
password_env = "MYGUARD_TEST_PW"
"""


@pytest.mark.parametrize(
    ("top", "listen", "expected"),
    [
        (
            "",
            "nowhere",
            "backends[0].listen: expected \"host:port\" with a port from 1 to 65535, got 'nowhere'",
        ),
        ('workers = "many"', "127.0.0.1:1", "workers: expected an integer >= 1, got 'many'"),
        (
            "listen_port = 3306",
            "127.0.0.1:1",
            "listen_port: expected a known key (this key is not recognised)",
        ),
        (
            "require_tls = true",
            "127.0.0.1:1",
            "require_tls: expected a [tls] table with cert_file and key_file",
        ),
    ],
)
def test_config_errors_name_file_key_and_expectation(tmp_path, top, listen, expected):
    bad = tmp_path / "bad.toml"
    bad.write_text(BASE.format(top=top, listen=listen))
    r = subprocess.run(
        [sys.executable, "-m", "myguard", "config", "check", str(bad)],
        capture_output=True,
        text=True,
        env={**os.environ, "MYGUARD_TEST_PW": "x"},
    )
    assert r.returncode == 2
    assert f"{bad}: {expected}" in r.stderr


def test_example_config_checks_and_version():
    example = os.path.join(os.path.dirname(__file__), "..", "..", "conf", "myguard.toml")
    env = {**os.environ, "MYGUARD_SHOP_PASSWORD": "x"}
    r = subprocess.run(
        [sys.executable, "-m", "myguard", "config", "check", example],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [sys.executable, "-m", "myguard", "--version"], capture_output=True, text=True
    )
    assert r.stdout.startswith("myguard ")


def test_kill_reaches_a_session_of_another_worker(private_proxy):
    p = private_proxy(workers=2)
    by_worker: dict[int, list] = {}
    for _ in range(40):
        conn = pymysql.connect(host="127.0.0.1", port=p.port, user="alice", password="alice-pw-1")
        by_worker.setdefault(conn.thread_id() >> 24, []).append(conn)
        if len(by_worker) == 2:
            break
    assert sorted(by_worker) == [0, 1]
    killer, victim = by_worker[0][0], by_worker[1][0]
    bob = pymysql.connect(host="127.0.0.1", port=p.port, user="bob", password="bob-pw-2")
    with bob.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as err:
        cur.execute(f"KILL {victim.thread_id()}")
    assert err.value.args[0] == 1095  # not bob's session, whichever worker holds it
    with killer.cursor() as cur:
        cur.execute(f"KILL {victim.thread_id()}")
    with pytest.raises(pymysql.err.OperationalError):
        victim.cursor().execute("SELECT 1")
    with killer.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as err:
        cur.execute(f"KILL {(5 << 24) + 1}")  # no such worker
    assert err.value.args[0] == 1094
