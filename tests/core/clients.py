"""Real MySQL client drivers behind one small interface, for proxy-vs-direct comparisons.

Every driver connects with its own default options plus host/port/user/password/database
(and TLS settings when asked). aiomysql is wrapped in a blocking adapter so one scenario
function can drive every driver.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import aiomysql
import mysql.connector
import MySQLdb
import MySQLdb.cursors
import pymysql
import pymysql.cursors
from mysql.connector import errors as connector_errors
from pymysql.constants import CLIENT

from mariadb_server import SERVICE_PASSWORD, SERVICE_USER


@dataclass(frozen=True)
class Target:
    """Where a client connects: through myguard or straight to MariaDB."""

    name: str
    port: int
    user: str
    password: str
    ca: str | None  # the CA to verify (myguard's self-signed cert), when TLS is wanted


def targets(proxy: Any, mariadb: Any, tls: bool = False) -> tuple[Target, Target]:
    """(through myguard as alice, direct as myguard's own service account).

    The service account rather than root: the fixture's root@127.0.0.1 keeps the empty
    password mariadb-install-db gave it. MariaDB itself has no TLS: direct is plain.
    """
    ca = str(proxy.cert) if tls else None
    return (
        Target("proxy", proxy.port, "alice", "alice-pw-1", ca),
        Target("direct", mariadb.port, SERVICE_USER, SERVICE_PASSWORD, None),
    )


class Driver:
    name = ""
    error: type[BaseException] = Exception
    supports_prepared = False

    def connect(self, target: Target, database: str = "test", **extra: Any) -> Any:
        raise NotImplementedError

    def multi_statement_options(self) -> dict[str, Any]:
        """Extra connect options that enable CLIENT_MULTI_STATEMENTS (none when default)."""
        return {}

    def stream_cursor(self, conn: Any) -> Any:
        """A cursor that streams rows instead of buffering the result."""
        raise NotImplementedError

    def prepared_cursor(self, conn: Any) -> Any:
        raise NotImplementedError

    def error_info(self, exc: BaseException) -> tuple[int, str | None, str]:
        code, message = exc.args[0], exc.args[1]
        return code, getattr(exc, "sqlstate", None), message

    def is_tls(self, conn: Any) -> bool | None:
        """Whether the client side of ``conn`` is encrypted (None: the driver does not say)."""
        return None

    def set_autocommit(self, conn: Any, on: bool) -> None:
        conn.autocommit(on)

    def warning_count(self, cursor: Any) -> int:
        return cursor.warning_count

    def call(self, conn: Any, procedure: str, args: tuple[Any, ...]) -> list[Any]:
        """CALL a procedure; every result set it returns: (description, rows, rowcount)."""
        cur = conn.cursor()
        cur.execute(f"CALL {procedure}({', '.join(['%s'] * len(args))})", args)
        results = list(self.result_sets(cur))
        cur.close()
        return results

    def abandon(self, cursor: Any) -> None:
        """Close a streaming cursor whose result was not read to the end."""
        cursor.close()

    def result_sets(self, cursor: Any) -> Iterator[tuple[Any, Any, int]]:
        """Every result of the last execute: (description, rows, rowcount)."""
        while True:
            rows = cursor.fetchall() if cursor.description else None
            yield _norm_description(cursor.description), _norm_rows(rows), cursor.rowcount
            if not cursor.nextset():
                return


def _norm_rows(rows: Any) -> Any:
    return None if rows is None else [tuple(r) for r in rows]


def _norm_description(description: Any) -> Any:
    return None if description is None else [tuple(d) for d in description]


class PyMySQLDriver(Driver):
    name = "pymysql"
    error = pymysql.MySQLError

    def connect(self, target: Target, database: str = "test", **extra: Any) -> Any:
        options: dict[str, Any] = {}
        if target.ca:
            options["ssl"] = {"ca": target.ca}
        return pymysql.connect(
            host="127.0.0.1",
            port=target.port,
            user=target.user,
            password=target.password,
            database=database,
            **options,
            **extra,
        )

    def multi_statement_options(self) -> dict[str, Any]:
        return {"client_flag": CLIENT.MULTI_STATEMENTS}

    def stream_cursor(self, conn: Any) -> Any:
        return conn.cursor(pymysql.cursors.SSCursor)

    def is_tls(self, conn: Any) -> bool | None:
        return isinstance(conn._sock, ssl.SSLSocket)


class ConnectorDriver(Driver):
    supports_prepared = True

    def __init__(self, use_pure: bool) -> None:
        self.use_pure = use_pure
        self.name = "connector-pure" if use_pure else "connector-cext"

    @property
    def error(self) -> Any:  # type: ignore[override]
        if self.use_pure:
            return connector_errors.Error
        # The C extension lets its own MySQLInterfaceError escape from nextset().
        from _mysql_connector import MySQLInterfaceError

        return (connector_errors.Error, MySQLInterfaceError)

    def connect(self, target: Target, database: str = "test", **extra: Any) -> Any:
        if not self.use_pure and not mysql.connector.HAVE_CEXT:
            # Installed but not loadable is a broken environment, never a reason to skip.
            from mysql.connector import connection_cext  # noqa: F401  (raises the real reason)
        options: dict[str, Any] = {}
        if target.ca:
            options.update(ssl_ca=target.ca, ssl_verify_cert=True)
        conn = mysql.connector.connect(
            host="127.0.0.1",
            port=target.port,
            user=target.user,
            password=target.password,
            database=database,
            use_pure=self.use_pure,
            **options,
            **extra,
        )
        expected = "MySQLConnection" if self.use_pure else "CMySQLConnection"
        assert type(conn).__name__ == expected, type(conn)
        return conn

    def stream_cursor(self, conn: Any) -> Any:
        return conn.cursor(buffered=False)

    def prepared_cursor(self, conn: Any) -> Any:
        return conn.cursor(prepared=True)

    def error_info(self, exc: BaseException) -> tuple[int, str | None, str]:
        return exc.errno, exc.sqlstate, exc.msg

    def is_tls(self, conn: Any) -> bool | None:
        if self.use_pure:
            return bool(conn.is_secure)
        return None  # the C extension's is_secure is always False; ssl_ca makes TLS mandatory

    def set_autocommit(self, conn: Any, on: bool) -> None:
        conn.autocommit = on

    def call(self, conn: Any, procedure: str, args: tuple[Any, ...]) -> list[Any]:
        # execute("CALL ...") fails on the final OK in connector 26 (directly too): callproc.
        cur = conn.cursor()
        cur.callproc(procedure, args)
        results = [
            (_norm_description(r.description), _norm_rows(r.fetchall()), r.rowcount)
            for r in cur.stored_results()
        ]
        cur.close()
        return results

    def abandon(self, cursor: Any) -> None:
        # Connector refuses to close a cursor with unread rows ("Unread result found").
        cursor.fetchall()
        cursor.close()

    def result_sets(self, cursor: Any) -> Iterator[tuple[Any, Any, int]]:
        while True:
            rows = cursor.fetchall() if cursor.with_rows else None
            yield _norm_description(cursor.description), _norm_rows(rows), cursor.rowcount
            if not cursor.nextset():
                return


class MySQLdbDriver(Driver):
    name = "mysqlclient"
    error = MySQLdb.MySQLError

    def connect(self, target: Target, database: str = "test", **extra: Any) -> Any:
        options: dict[str, Any] = {}
        if target.ca:
            options["ssl"] = {"ca": target.ca}
        return MySQLdb.connect(
            host="127.0.0.1",
            port=target.port,
            user=target.user,
            password=target.password,
            database=database,
            **options,
            **extra,
        )

    def stream_cursor(self, conn: Any) -> Any:
        return conn.cursor(MySQLdb.cursors.SSCursor)


class _AioCursor:
    """Blocking face of an aiomysql cursor."""

    def __init__(self, run: Callable[[Any], Any], cursor: Any) -> None:
        self._run = run
        self._cursor = cursor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    @property
    def warning_count(self) -> int:
        result = self._cursor._result
        return result.warning_count if result is not None else 0

    def execute(self, sql: str, args: Any = None) -> Any:
        return self._run(self._cursor.execute(sql, args))

    def executemany(self, sql: str, args: Any) -> Any:
        return self._run(self._cursor.executemany(sql, args))

    def fetchone(self) -> Any:
        return self._run(self._cursor.fetchone())

    def fetchmany(self, size: int | None = None) -> Any:
        return self._run(self._cursor.fetchmany(size))

    def fetchall(self) -> Any:
        return self._run(self._cursor.fetchall())

    def nextset(self) -> Any:
        return self._run(self._cursor.nextset())

    def close(self) -> None:
        self._run(self._cursor.close())

    def __iter__(self) -> Iterator[Any]:
        while (row := self.fetchone()) is not None:
            yield row

    def __enter__(self) -> _AioCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AioConnection:
    """Blocking face of an aiomysql connection, with its own event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn: Any) -> None:
        self._loop = loop
        self._conn = conn

    def run(self, awaitable: Any) -> Any:
        # aiomysql returns context-manager wrappers that only a coroutine may await.
        async def wait() -> Any:
            return await awaitable

        return self._loop.run_until_complete(wait())

    def cursor(self, cursor_class: Any = None) -> _AioCursor:
        coro = self._conn.cursor(cursor_class) if cursor_class else self._conn.cursor()
        return _AioCursor(self.run, self.run(coro))

    def commit(self) -> None:
        self.run(self._conn.commit())

    def rollback(self) -> None:
        self.run(self._conn.rollback())

    def autocommit(self, on: bool) -> None:
        self.run(self._conn.autocommit(on))

    def close(self) -> None:
        try:
            self.run(self._conn.ensure_closed())
        finally:
            self._loop.close()


class AioMySQLDriver(Driver):
    name = "aiomysql"
    error = pymysql.MySQLError

    def connect(self, target: Target, database: str = "test", **extra: Any) -> Any:
        options: dict[str, Any] = {}
        if target.ca:
            options["ssl"] = ssl.create_default_context(cafile=target.ca)
        loop = asyncio.new_event_loop()

        async def open_connection() -> Any:
            return await aiomysql.connect(
                host="127.0.0.1",
                port=target.port,
                user=target.user,
                password=target.password,
                db=database,
                **options,
                **extra,
            )

        try:
            conn = loop.run_until_complete(open_connection())
        except BaseException:
            loop.close()
            raise
        return _AioConnection(loop, conn)

    def multi_statement_options(self) -> dict[str, Any]:
        return {"client_flag": CLIENT.MULTI_STATEMENTS}

    def stream_cursor(self, conn: Any) -> Any:
        return conn.cursor(aiomysql.SSCursor)

    def is_tls(self, conn: Any) -> bool | None:
        return conn._conn._writer.get_extra_info("ssl_object") is not None


DRIVERS: dict[str, Driver] = {
    d.name: d
    for d in (
        PyMySQLDriver(),
        ConnectorDriver(use_pure=True),
        ConnectorDriver(use_pure=False),
        MySQLdbDriver(),
        AioMySQLDriver(),
    )
}


def table_name(prefix: str, driver: Driver, tls: bool = False) -> str:
    """A table name unique to the test and driver (targets run one after the other)."""
    return f"{prefix}_{driver.name.replace('-', '_')}{'_tls' if tls else ''}"


def compare(
    driver: Driver,
    proxy_target: Target,
    direct_target: Target,
    work: Callable[[Driver, Target], Any],
) -> Any:
    """Run ``work`` directly, then through myguard; the results must be identical."""
    direct = work(driver, direct_target)
    through = work(driver, proxy_target)
    assert through == direct
    return direct
