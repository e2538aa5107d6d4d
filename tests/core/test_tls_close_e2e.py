"""A TLS client that ends with close_notify (asyncio's SSL transport on close, so aiomysql
and other asyncio drivers) ends its session: myguard answers with its own close_notify and
the backend session, its transaction and locks go at once, not when TCP finally drops."""

from __future__ import annotations

import ssl
import threading
import time

import pymysql


def test_close_notify_ends_the_session_and_its_locks(proxy, mariadb):
    mariadb.sql("CREATE TABLE IF NOT EXISTS test.tls_close_t (id INT)")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    quitter = pymysql.connect(
        host="127.0.0.1", port=proxy.port, user="alice", password="alice-pw-1",
        database="test", autocommit=False, ssl=ctx,
    )  # fmt: skip
    with quitter.cursor() as cur:
        cur.execute("SELECT * FROM test.tls_close_t")  # a transaction holding a metadata lock
    sock = quitter._sock
    sock.settimeout(10)
    answered: list[object] = []

    def close_tls() -> None:
        try:
            sock.unwrap()  # sends close_notify and waits for the peer's
            answered.append(True)
        except OSError as exc:  # ssl.SSLError and timeouts included
            answered.append(exc)
        finally:
            sock.close()

    closing = threading.Thread(target=close_tls)
    closing.start()
    started = time.monotonic()
    other = pymysql.connect(
        host="127.0.0.1", port=proxy.port, user="alice", password="alice-pw-1", autocommit=True
    )
    with other.cursor() as cur:
        cur.execute("SET SESSION lock_wait_timeout = 5")
        cur.execute("DROP TABLE test.tls_close_t")  # waits while the quitter's lock lives
    waited = time.monotonic() - started
    other.close()
    closing.join()
    assert answered == [True]  # myguard's close_notify came back
    assert waited < 5
