"""SQLite approval store: embedded, WAL mode, one file; the default.

sqlite3 calls run on a single dedicated thread (the connection is used from that
thread only), so the event loop never blocks and writes are naturally serialized.
Several processes may open the same file (e.g. the CLI next to the proxy): every
write transaction starts with BEGIN IMMEDIATE, which takes the database write lock
before reading, so a read-check-update can't interleave with another writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from myguard.approvals.sql_store import REQUESTS, VOTES, Cursor, SqlApprovalStore
from myguard.approvals.store import StoreMissing

T = TypeVar("T")

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {REQUESTS} (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created_at REAL NOT NULL,
        status TEXT NOT NULL,
        scope TEXT NOT NULL,
        requester TEXT NOT NULL,
        statement_key TEXT NOT NULL,
        fingerprint_key TEXT NOT NULL,
        expires_at REAL NOT NULL,
        uses_left INTEGER,
        context TEXT NOT NULL,
        closed_by TEXT,
        closed_at REAL,
        close_reason TEXT)""",
    f"CREATE INDEX IF NOT EXISTS {REQUESTS}_status ON {REQUESTS} (status, requester)",
    f"""CREATE TABLE IF NOT EXISTS {VOTES} (
        request_id INTEGER NOT NULL REFERENCES {REQUESTS} (id),
        approver TEXT NOT NULL,
        at REAL NOT NULL,
        reason TEXT,
        PRIMARY KEY (request_id, approver))""",
)


class SqliteApprovalStore(SqlApprovalStore):
    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0, create: bool = True) -> None:
        """``create=False`` (read-only commands): never create the file, its directory or
        its tables; a missing store raises StoreMissing at the first query."""
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._create = create
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="approvals-sqlite")
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            if self._create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                target, uri = str(self.path), False
            elif not self.path.is_file():
                what = (
                    "is a directory, not a database file"
                    if self.path.is_dir()
                    else "does not exist"
                )
                raise StoreMissing(f"approval store sqlite:{self.path} {what}")
            else:
                # mode=rw: SQLite itself must not create the file if it vanished meanwhile.
                target, uri = f"{self.path.absolute().as_uri()}?mode=rw", True
            # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
            conn = sqlite3.connect(
                target, timeout=self._busy_timeout, isolation_level=None, uri=uri
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            if self._create:
                for statement in _DDL:
                    conn.execute(statement)
            elif not conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = ?", (REQUESTS,)
            ).fetchone():
                conn.close()
                raise StoreMissing(f"sqlite:{self.path} is not an approval store (no {REQUESTS})")
            self._conn = conn
        return self._conn

    def _run(self, work: Callable[[Cursor], T]) -> T:
        cur = self._connection().cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            result = work(cur)
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")
        return result

    async def _transaction(self, work: Callable[[Cursor], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, work)

    async def aclose(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, shut)
        self._executor.shutdown(wait=True)
