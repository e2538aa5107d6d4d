"""Table columns, view definitions and triggers from the backend's information_schema,
cached.

Masking needs them to follow ``SELECT *`` and views back to base columns, and to read the
triggers a write fires. One service connection per backend asks, serialised by a lock;
answers are cached for ``ttl`` seconds and dropped at once after DDL through myguard.
information_schema.TRIGGERS lists only the triggers of tables on which the service
account holds the TRIGGER privilege.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import NamedTuple

from myguard.analysis import analyze
from myguard.backend.connect import INTERNAL_CAPABILITIES, BackendConnection, connect
from myguard.backend.query import text_query
from myguard.config import BackendConfig
from myguard.net.packet_stream import ConnectionLost
from myguard.protocol.constants import UTF8MB4_GENERAL_CI
from myguard.protocol.errors import MySQLError

Table = tuple[str, str]
_VIEW_DEPTH = 4  # views of views are followed this deep


class Trigger(NamedTuple):
    db: str  # the trigger's own database, where its body's unqualified names belong
    name: str
    event: str  # INSERT, UPDATE or DELETE
    table: Table  # the table it fires on, as the server spells it
    body: str  # ACTION_STATEMENT


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SchemaCatalog:
    def __init__(self, config: BackendConfig, ttl: float = 300.0) -> None:
        self.config = config
        self.ttl = ttl
        self._conn: BackendConnection | None = None
        self._lock = asyncio.Lock()
        # (db, table) -> (fetched at, columns or None, view SQL or None)
        self._tables: dict[Table, tuple[float, list[str] | None, str | None]] = {}
        self._triggers: dict[Table, tuple[float, tuple[Trigger, ...] | None]] = {}

    def invalidate(self) -> None:
        self._tables.clear()
        self._triggers.clear()

    def triggers(self, db: str, table: str) -> tuple[Trigger, ...] | None:
        """The triggers on a table; None when they cannot be known: not fetched
        (``prefetch_triggers``), or the service account lacks the TRIGGER privilege there
        (information_schema.TRIGGERS then hides them)."""
        entry = self._triggers.get((db.lower(), table.lower()))
        return entry[1] if entry else None

    async def prefetch_triggers(self, tables: Iterable[Table]) -> None:
        """Make sure the triggers of ``tables`` are cached."""
        now = time.monotonic()
        missing = {
            (db.lower(), name.lower())
            for db, name in tables
            if now - self._triggers.get((db.lower(), name.lower()), (-self.ttl - 1,))[0] > self.ttl
        }
        if not missing:
            return
        pairs = ", ".join(f"({_quote(db)}, {_quote(name)})" for db, name in sorted(missing))
        async with self._lock:
            # Compared lower-cased: a table whose name has capitals keeps its triggers.
            rows = await self._query(
                "SELECT TRIGGER_SCHEMA, TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_SCHEMA, "
                "EVENT_OBJECT_TABLE, ACTION_STATEMENT FROM information_schema.TRIGGERS WHERE "
                f"(LOWER(EVENT_OBJECT_SCHEMA), LOWER(EVENT_OBJECT_TABLE)) IN ({pairs}) "
                "ORDER BY ACTION_ORDER"
            )
            visible = await self._trigger_privileges()
        found: dict[Table, list[Trigger]] = {}
        for db, name, event, table_db, table, body in rows:
            trigger = Trigger(db, name, event.upper(), (table_db, table), body)
            found.setdefault((table_db.lower(), table.lower()), []).append(trigger)
        now = time.monotonic()
        for table in missing:
            seen = "*" in visible or (table[0], "*") in visible or table in visible
            self._triggers[table] = (now, tuple(found.get(table, ())) if seen else None)

    async def _trigger_privileges(self) -> set[object]:
        """Where the service account holds TRIGGER: "*" (everywhere), (db, "*"), (db, table)."""
        # The privilege views list every account's grants to an account that may read the
        # mysql schema: only this account's count (granted through a role: not seen, refused).
        quote = "CHAR(39)"  # no quote characters: any sql_mode reads this the same
        mine = (
            f"GRANTEE = CONCAT({quote}, REPLACE(CURRENT_USER(), '@', "
            f"CONCAT({quote}, '@', {quote})), {quote})"
        )
        rows = await self._query(
            "SELECT '*', '*' FROM information_schema.USER_PRIVILEGES "
            f"WHERE PRIVILEGE_TYPE = 'TRIGGER' AND {mine} UNION ALL "
            "SELECT LOWER(TABLE_SCHEMA), '*' FROM information_schema.SCHEMA_PRIVILEGES "
            f"WHERE PRIVILEGE_TYPE = 'TRIGGER' AND {mine} UNION ALL "
            "SELECT LOWER(TABLE_SCHEMA), LOWER(TABLE_NAME) FROM information_schema.TABLE_PRIVILEGES "
            f"WHERE PRIVILEGE_TYPE = 'TRIGGER' AND {mine}"
        )
        return {"*" if db == "*" else (db, table) for db, table in rows}

    def columns(self, db: str, table: str) -> list[str] | None:
        entry = self._tables.get((db.lower(), table.lower()))
        return entry[1] if entry else None

    def view(self, db: str, table: str) -> str | None:
        entry = self._tables.get((db.lower(), table.lower()))
        return entry[2] if entry else None

    async def prefetch(self, tables: Iterable[Table]) -> None:
        """Make sure ``tables`` (and the tables behind views among them) are cached."""
        wanted = {(db.lower(), name.lower()) for db, name in tables}
        for _ in range(_VIEW_DEPTH):
            now = time.monotonic()
            missing = [
                t for t in wanted if t not in self._tables or now - self._tables[t][0] > self.ttl
            ]
            if not missing:
                return
            async with self._lock:
                await self._fetch(missing)
            wanted = set()
            for t in missing:
                view = self._tables[t][2]
                if view:
                    for statement in analyze(view, t[0]):
                        wanted |= {
                            ((r.db or t[0]).lower(), r.name.lower()) for r in statement.reads
                        }

    async def _fetch(self, tables: list[Table]) -> None:
        pairs = ", ".join(f"({_quote(db)}, {_quote(name)})" for db, name in tables)
        columns = await self._query(
            "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
            f"WHERE (TABLE_SCHEMA, TABLE_NAME) IN ({pairs}) ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION"
        )
        views = await self._query(
            "SELECT TABLE_SCHEMA, TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS "
            f"WHERE (TABLE_SCHEMA, TABLE_NAME) IN ({pairs})"
        )
        found: dict[Table, list[str]] = {}
        for db, name, column in columns:
            found.setdefault((db.lower(), name.lower()), []).append(column)
        view_sql = {(db.lower(), name.lower()): sql for db, name, sql in views}
        now = time.monotonic()
        for table in tables:
            self._tables[table] = (now, found.get(table), view_sql.get(table))

    async def _query(self, sql: str) -> list[list[str]]:
        try:
            return await self._run(sql)
        except (ConnectionLost, MySQLError):
            # One retry on a fresh connection: the old one may have timed out.
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            return await self._run(sql)

    async def _run(self, sql: str) -> list[list[str]]:
        if self._conn is None:
            self._conn = await connect(
                self.config,
                self.config.account,
                client_capabilities=INTERNAL_CAPABILITIES,
                charset=UTF8MB4_GENERAL_CI,
                database=None,
                attributes={"program_name": "myguard", "myguard_purpose": "schema catalog"},
                max_packet=64 << 20,
            )
        _, rows = await text_query(self._conn.stream, sql, deprecate_eof=False)
        return [[value or "" for value in row] for row in rows]

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
