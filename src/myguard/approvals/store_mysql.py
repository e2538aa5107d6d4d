"""MySQL/MariaDB approval store, so several myguard instances share one queue.

PyMySQL is blocking, so every transaction runs in a small thread pool; each worker
thread keeps its own connection. Transactions lock the rows they decide on
(SELECT ... FOR UPDATE), so two instances approving at once serialize on the row
and only one transition wins. Deadlocks and lock wait timeouts are retried.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import pymysql

from myguard.approvals.sql_store import REQUESTS, VOTES, Cursor, SqlApprovalStore
from myguard.approvals.store import StoreMissing

T = TypeVar("T")

_RETRYABLE = {1205, 1213}  # lock wait timeout, deadlock
_MISSING = {1049, 1146}  # unknown database, unknown table
_ATTEMPTS = 3

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {REQUESTS} (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        created_at DOUBLE NOT NULL,
        status VARCHAR(16) NOT NULL,
        scope VARCHAR(8) NOT NULL,
        requester VARCHAR(255) NOT NULL,
        statement_key CHAR(64) NOT NULL,
        fingerprint_key CHAR(64) NOT NULL,
        expires_at DOUBLE NOT NULL,
        uses_left INT NULL,
        context MEDIUMTEXT NOT NULL,
        closed_by VARCHAR(255) NULL,
        closed_at DOUBLE NULL,
        close_reason TEXT NULL,
        KEY status_requester (status, requester)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    f"""CREATE TABLE IF NOT EXISTS {VOTES} (
        request_id BIGINT NOT NULL,
        approver VARCHAR(255) NOT NULL,
        at DOUBLE NOT NULL,
        reason TEXT NULL,
        PRIMARY KEY (request_id, approver)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
)


@dataclass(frozen=True)
class MysqlTarget:
    host: str
    port: int
    user: str
    database: str
    password: str | None = None
    connect_timeout: float = 5.0


class MysqlApprovalStore(SqlApprovalStore):
    ignore = "INSERT IGNORE"
    lock = "FOR UPDATE"

    def __init__(self, target: MysqlTarget, *, threads: int = 4, create: bool = True) -> None:
        """``create=False`` (read-only commands): never create the tables; a missing
        database or table raises StoreMissing."""
        self.target = target
        self._create = create
        self._executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="approvals-mysql"
        )
        self._local = threading.local()
        self._all: list[pymysql.connections.Connection] = []
        self._all_lock = threading.Lock()
        self._schema_ready = False

    def _sql(self, text: str) -> str:
        # Our queries contain no literal '?' or '%', so this swap is safe.
        return super()._sql(text).replace("?", "%s")

    def _connect(self) -> pymysql.connections.Connection:
        t = self.target
        try:
            return self._open(t)
        except pymysql.err.MySQLError as exc:
            if not self._create and exc.args and exc.args[0] in _MISSING:
                raise StoreMissing(f"approval store {t.database}@{t.host}: {exc.args[1]}") from None
            raise

    def _open(self, t: MysqlTarget) -> pymysql.connections.Connection:
        conn = pymysql.connect(
            host=t.host,
            port=t.port,
            user=t.user,
            password=t.password or "",
            database=t.database,
            connect_timeout=t.connect_timeout,
            autocommit=False,
            charset="utf8mb4",
        )
        with self._all_lock:
            self._all.append(conn)
            if not self._schema_ready:
                with conn.cursor() as cur:
                    for statement in (
                        _DDL if self._create else (f"SELECT 1 FROM {REQUESTS} LIMIT 0",)
                    ):
                        cur.execute(statement)
                conn.commit()
                self._schema_ready = True
        self._local.conn = conn
        return conn

    def _connection(self) -> pymysql.connections.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            try:
                conn.ping(reconnect=False)
                return conn
            except pymysql.err.Error:
                # Server restarted or idle timeout: drop this one and open a fresh one.
                with self._all_lock:
                    self._all.remove(conn)
        return self._connect()

    def _run(self, work: Callable[[Cursor], T]) -> T:
        attempt = 1
        while True:
            conn = self._connection()
            try:
                conn.begin()
                with conn.cursor() as cur:
                    result = work(cur)
                conn.commit()
                return result
            except pymysql.err.OperationalError as exc:
                conn.rollback()
                if exc.args[0] not in _RETRYABLE or attempt == _ATTEMPTS:
                    raise
                attempt += 1
            except BaseException:
                conn.rollback()
                raise

    async def _transaction(self, work: Callable[[Cursor], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, work)

    async def aclose(self) -> None:
        def shut() -> None:
            with self._all_lock:
                for conn in self._all:
                    conn.close()
                self._all.clear()

        await asyncio.get_running_loop().run_in_executor(None, shut)
        self._executor.shutdown(wait=True)
