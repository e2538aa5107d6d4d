"""The pool across a backend restart and the server's wait_timeout: a private MariaDB is
stopped and started under a running myguard (the shared one serves the other tests)."""

from __future__ import annotations

import time

import pymysql
import pytest

from mariadb_server import MariaDBServer
from proxy_process import ProxyProcess

ER_MYGUARD_BACKEND_UNAVAILABLE = 4690


@pytest.fixture()
def own_db(tmp_path):
    db = MariaDBServer(tmp_path / "db")
    db.start()
    db.seed()
    yield db
    db.stop()


def login_and_select(proxy) -> int:
    conn = pymysql.connect(
        host="127.0.0.1", port=proxy.port, user="alice", password="alice-pw-1", database="shop"
    )
    with conn.cursor() as cur:
        cur.execute("SELECT @@pseudo_thread_id, COUNT(*) > 0 FROM customers")
        thread, rows = cur.fetchone()
    assert rows == 1
    conn.close()
    return thread


def wait_log(proxy, text: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while text not in proxy.log():
        assert time.monotonic() < deadline, f"{text} not in the log"
        time.sleep(0.1)


def test_backend_restart_under_a_warm_pool(own_db, tmp_path):
    proxy = ProxyProcess(
        tmp_path / "proxy", own_db, workers=1, backend={"pool": {"min_idle": 2, "max": 4}}
    )
    proxy.start()
    try:
        for _ in range(5):
            login_and_select(proxy)
        own_db.stop()
        with pytest.raises(pymysql.err.OperationalError) as down:
            login_and_select(proxy)
        assert down.value.args[0] == ER_MYGUARD_BACKEND_UNAVAILABLE
        wait_log(proxy, "event=pool_backend_down")
        own_db.start()
        # No client sees the connections that died with the old server: every login works.
        for _ in range(10):
            login_and_select(proxy)
        wait_log(proxy, "event=pool_backend_back")
    finally:
        proxy.stop()


def test_connections_the_server_timed_out_are_replaced_unseen(own_db, tmp_path):
    proxy = ProxyProcess(
        tmp_path / "proxy",
        own_db,
        workers=1,
        # ping_after above the test's length: only a checkout meets the dead connections
        backend={"pool": {"min_idle": 0, "max": 3, "ping_after": 3600}},
    )
    proxy.start()
    try:
        first = login_and_select(proxy)
        own_db.sql("SET GLOBAL wait_timeout = 1")
        try:
            # New connections get the short wait_timeout; the server closes them idle.
            conns = [
                pymysql.connect(
                    host="127.0.0.1", port=proxy.port, user="alice", password="alice-pw-1"
                )
                for _ in range(3)
            ]
            for conn in conns:
                conn.close()
            time.sleep(2.5)
            threads = {login_and_select(proxy) for _ in range(4)}
        finally:
            own_db.sql("SET GLOBAL wait_timeout = 28800")
        assert first not in threads
    finally:
        proxy.stop()
