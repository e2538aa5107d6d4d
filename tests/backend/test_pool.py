"""BackendPool against the shared MariaDB, in process: the paths a client cannot steer
(a pooled connection that died unnoticed, the reset fallback, configuration errors)."""

from __future__ import annotations

import asyncio

import pytest

from mariadb_server import SERVICE_PASSWORD, SERVICE_USER
from myguard.backend.pool import BackendPool, PoolExhausted, SessionIdentity
from myguard.config import BackendAccount, BackendConfig, PoolConfig
from myguard.protocol.constants import PROXY_CAPABILITIES, UTF8MB4_GENERAL_CI


def backend(mariadb, **pool) -> BackendConfig:
    return BackendConfig(
        name="main",
        environment="test",
        listen=("127.0.0.1", 1),
        upstream=("127.0.0.1", mariadb.port),
        account=BackendAccount(SERVICE_USER, SERVICE_PASSWORD),
        pool=PoolConfig(**{"min_idle": 0, **pool}),
    )


async def checkout(pool: BackendPool, user: str = "alice", database: str | None = None):
    return await pool.checkout(
        pool.config.account,
        client_capabilities=int(PROXY_CAPABILITIES),
        collation=UTF8MB4_GENERAL_CI,
        database=database,
        identity=SessionIdentity(user, 7, "127.0.0.1"),
        attributes={},
    )


def run(coro):
    return asyncio.run(coro)


def test_a_connection_that_died_unnoticed_is_replaced(mariadb):
    async def scenario():
        pool = BackendPool(backend(mariadb, max=2), workers=1, max_packet=1 << 24)
        conn = await checkout(pool)
        dead = conn.thread_id
        pool.release(conn, reusable=True)
        await asyncio.sleep(0.1)  # the reset's answer arrives
        # The server ends it; the event loop has not seen the socket close yet.
        mariadb.sql(f"KILL {dead}")
        conn = await checkout(pool, "bob")
        assert conn.thread_id != dead
        assert pool.counters.failures.get("broken") == 1
        assert pool.total == 1 and pool.in_use == 1
        pool.release(conn, reusable=False)
        assert pool.total == 0
        await pool.close()

    run(scenario())


def test_a_sessions_reset_on_a_dead_connection_fails_and_it_is_not_reused(mariadb):
    """BackendPool.reset (a client's COM_RESET_CONNECTION) when the server has ended the
    connection: BackendUnavailable, and the connection never goes back to the pool."""
    from myguard.backend.connect import BackendUnavailable

    async def scenario():
        pool = BackendPool(backend(mariadb, max=2), workers=1, max_packet=1 << 24)
        conn = await checkout(pool)
        identity = SessionIdentity("alice", 7, "127.0.0.1")
        await pool.reset(conn, UTF8MB4_GENERAL_CI, None, identity)  # a live one resets
        mariadb.sql(f"KILL {conn.thread_id}")
        await asyncio.sleep(0.1)
        with pytest.raises(BackendUnavailable) as exc:
            await pool.reset(conn, UTF8MB4_GENERAL_CI, None, identity)
        assert exc.value.code == 4690 and "reset failed" in exc.value.message
        assert conn.tainted and not conn.usable
        pool.release(conn, reusable=True)
        assert pool.total == 0 and pool.idle == 0
        await pool.close()

    run(scenario())


def test_exhausted_pool_error_names_the_limit(mariadb):
    async def scenario():
        pool = BackendPool(backend(mariadb, max=1, wait_timeout=0.2), workers=1, max_packet=1 << 24)
        held = await checkout(pool)
        with pytest.raises(PoolExhausted) as exc:
            await checkout(pool)
        assert exc.value.code == 1040
        assert "max = 1" in exc.value.message and "waited 0.2 s" in exc.value.message
        pool.release(held, reusable=True)
        again = await checkout(pool)
        assert again is held  # the same connection, reset
        pool.release(again, reusable=True)
        await pool.close()

    run(scenario())


def test_a_database_error_at_checkout_is_the_clients_and_keeps_the_connection(mariadb):
    async def scenario():
        pool = BackendPool(backend(mariadb, max=1), workers=1, max_packet=1 << 24)
        conn = await checkout(pool)
        pool.release(conn, reusable=True)
        with pytest.raises(Exception) as exc:
            await checkout(pool, database="no_such_db")
        assert getattr(exc.value, "code", None) == 1049
        assert pool.total == 1 and pool.in_use == 0 and pool.idle == 1
        await pool.close()

    run(scenario())


def test_pool_limit_follows_the_backends_max_connections(mariadb):
    async def scenario():
        pool = BackendPool(backend(mariadb, max=5000, headroom=100), workers=2, max_packet=1 << 24)
        conn = await checkout(pool)
        assert pool.limit == (2000 - 100) // 2  # tests/mariadb_server.py: max_connections
        pool.release(conn, reusable=True)
        await pool.close()

    run(scenario())


def test_a_database_the_connection_has_selected_is_not_selected_again(mariadb):
    """A checkout for the database the connection has selected, as the server confirmed
    within a second, sends no COM_INIT_DB (the reset keeps it), so its commands wait for
    the session's first one; later, for another database, or once a session changed it,
    the database is selected afresh (a round trip at login)."""
    mariadb.sql("CREATE DATABASE IF NOT EXISTS pool_db_a; CREATE DATABASE IF NOT EXISTS pool_db_b")
    now = [1000.0]

    async def scenario():
        pool = BackendPool(
            backend(mariadb, max=1), workers=1, max_packet=1 << 24, clock=lambda: now[0]
        )

        async def take(database: str):
            conn = await pool.checkout(
                pool.config.account,
                client_capabilities=int(PROXY_CAPABILITIES),
                collation=UTF8MB4_GENERAL_CI,
                database=database,
                identity=SessionIdentity("alice", 7, "127.0.0.1"),
                attributes={},
                defer=True,
            )
            deferred = [p[0] for p in conn.deferred]
            pool.release(conn, reusable=True)
            await asyncio.sleep(0.05)  # the reset's answer arrives
            return conn, deferred

        init_db = 0x02
        conn, _ = await take("pool_db_a")  # a fresh login with the database
        assert conn.database == "pool_db_a"
        now[0] += 0.5
        _, deferred = await take("pool_db_a")
        assert deferred and init_db not in deferred  # nothing sent: all deferred
        now[0] += 0.6  # the server said so more than a second ago
        _, deferred = await take("pool_db_a")
        assert deferred == []  # COM_INIT_DB went, and everything with it
        assert conn.database == "pool_db_a" and conn.database_at == now[0]
        _, deferred = await take("pool_db_b")
        assert deferred == [] and conn.database == "pool_db_b"
        now[0] += 0.1
        conn.database = None  # a session selected another one itself (USE)
        _, deferred = await take("pool_db_b")
        assert deferred == [] and conn.database == "pool_db_b"
        now[0] += 0.1
        _, deferred = await take("pool_db_b")
        assert deferred and init_db not in deferred
        await pool.close()

    try:
        run(scenario())
    finally:
        mariadb.sql("DROP DATABASE pool_db_a; DROP DATABASE pool_db_b")
