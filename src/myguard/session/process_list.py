"""The process list as myguard's users should see it.

Every session reaches the backend as the same service account, so the backend's own
process list would show each user every other user's statements, under thread ids the
client never saw. ``SHOW [FULL] PROCESSLIST`` and ``information_schema.PROCESSLIST`` are
answered from myguard's sessions instead: a user sees their own, members of
``process_list_groups`` see all; ids are session ids; the statement of a session with
masking has its literals redacted.

Pure functions: the rows, the SHOW answer's columns, and the rewrite that puts the rows in
place of ``information_schema.PROCESSLIST`` (so any SELECT over it, with its WHERE, ORDER
BY and joins, runs on the backend against myguard's rows).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Protocol

from myguard.analysis.lexer import code_tokens
from myguard.audit.redact import redact_literals
from myguard.protocol.column_types import (
    BINARY_FLAG,
    MYSQL_TYPE_DOUBLE,
    MYSQL_TYPE_LONG,
    MYSQL_TYPE_LONG_BLOB,
    MYSQL_TYPE_LONGLONG,
    NOT_NULL_FLAG,
)
from myguard.protocol.resultset import Column

# Typed as the server types them: drivers convert Id and Time to numbers (KILL takes Id).
SHOW_COLUMNS = [
    Column("Id", MYSQL_TYPE_LONGLONG, 11, NOT_NULL_FLAG | BINARY_FLAG),
    Column("User", flags=NOT_NULL_FLAG), Column("Host", flags=NOT_NULL_FLAG), "db",
    Column("Command", flags=NOT_NULL_FLAG),
    Column("Time", MYSQL_TYPE_LONG, 7, NOT_NULL_FLAG | BINARY_FLAG),
    "State",
    Column("Info", MYSQL_TYPE_LONG_BLOB, 0xC0000000),  # LONGTEXT, as the server reports it
    Column("Progress", MYSQL_TYPE_DOUBLE, 7, NOT_NULL_FLAG | BINARY_FLAG, 3),
]  # fmt: skip
SHORT_INFO = 100  # SHOW PROCESSLIST without FULL shows this much of a statement
_SHOW = re.compile(r"\s*SHOW\s+(FULL\s+)?PROCESSLIST\s*;?\s*$", re.IGNORECASE)
# Words after a table reference that are not its alias.
_NOT_ALIAS = frozenset(
    {
        "WHERE", "GROUP", "ORDER", "LIMIT", "HAVING", "JOIN", "INNER", "LEFT", "RIGHT",
        "CROSS", "NATURAL", "STRAIGHT_JOIN", "UNION", "ON", "USING", "WINDOW", "FOR",
        "LOCK", "INTO", "PROCEDURE", "EXCEPT", "INTERSECT",
    }
)  # fmt: skip


class Listed(Protocol):
    """What the process list reads of a session (a ``SessionState``)."""

    id: int
    user: str
    client_address: str
    database: str | None
    busy: bool
    last_active: float
    held_request: int | None
    current_statement: str | None
    masks_literals: bool


def row(session: Listed, now: float | None = None) -> dict[str, object]:
    """One session as a process-list row (full statement)."""
    now = time.monotonic() if now is None else now
    text = session.current_statement if session.busy else None
    if text is not None and session.masks_literals:
        text = redact_literals(text)
    if session.held_request is not None:
        state = f"waiting for approval {session.held_request}"
    else:
        state = "executing" if session.busy else ""
    return {
        "Id": session.id,
        "User": session.user,
        "Host": session.client_address,
        "db": session.database,
        "Command": "Query" if session.busy else "Sleep",
        "Time": int(now - session.last_active),
        "State": state,
        "Info": text,
    }


def detail_row(session: Listed, now: float | None = None) -> dict[str, object]:
    """``row`` and what the web console shows besides: groups, client program, backend."""
    out = row(session, now)
    identity = getattr(session, "identity", None)
    backend = getattr(session, "backend_config", None)
    out["Groups"] = sorted(identity.groups) if identity is not None else []
    out["Program"] = (getattr(session, "attributes", None) or {}).get("program_name")
    out["Backend"] = backend.name if backend is not None else None
    out["Environment"] = backend.environment if backend is not None else None
    out["Held"] = session.held_request
    return out


def visible(sessions: Iterable[Listed], user: str, sees_all: bool) -> list[Listed]:
    return sorted((s for s in sessions if sees_all or s.user == user), key=lambda s: s.id)


def show_full(sql: str) -> bool | None:
    """For ``SHOW [FULL] PROCESSLIST``: whether FULL; None for any other statement."""
    found = _SHOW.match(sql)
    return None if found is None else found.group(1) is not None


def show_rows(rows: list[dict[str, object]], full: bool) -> list[list[str | None]]:
    """The rows of the SHOW answer, as text."""
    out = []
    for r in rows:
        info = r["Info"]
        if isinstance(info, str) and not full:
            info = info[:SHORT_INFO]
        values = [r["Id"], r["User"], r["Host"], r["db"], r["Command"], r["Time"], r["State"]]
        out.append([None if v is None else str(v) for v in values] + [info, "0.000"])
    return out


# First words of statements that hold the process list for later, out of the rewrite's
# reach: dynamic SQL keeps it in a string; a stored program or view runs it without myguard.
_DYNAMIC = frozenset({"PREPARE", "EXECUTE"})
_DEFINES = frozenset({"CREATE", "ALTER"})
REFUSED_PREPARED = (
    "myguard: the process list is answered to text queries only; a prepared statement "
    "would read the backend's list of every user's sessions"
)


def unreachable(sql: str) -> str | None:
    """Why the process list named in ``sql`` cannot be given myguard's rows, or None."""
    tokens = code_tokens(sql)
    first = _name(tokens[0]) if tokens else None
    if first in _DYNAMIC:
        return "myguard: dynamic SQL (PREPARE, EXECUTE IMMEDIATE) may not name the process list"
    if first in _DEFINES and with_rows(sql, [], None) != sql:
        return (
            "myguard: a stored program or view may not read the process list: "
            "it would run without myguard"
        )
    return None


def mentions(words: str) -> bool:
    """Might a statement, its text lowercased, read the process list? (A cheap test.)"""
    return "processlist" in words


def with_rows(sql: str, rows: list[dict[str, object]], current_db: str | None) -> str:
    """``sql`` with each ``information_schema.PROCESSLIST`` (also unqualified when the
    current database is information_schema) replaced by a derived table of ``rows``.

    A column named through the schema (``information_schema.PROCESSLIST.INFO``) keeps
    ``PROCESSLIST.INFO``, which names the derived table; a type anchor (``TYPE OF``,
    ``ROW TYPE OF`` in a stored routine) reads no rows and stays as it is."""
    table = _derived(rows)
    bare_ok = (current_db or "").lower() == "information_schema"
    matches = code_tokens(sql)
    out: list[str] = []
    copied = 0
    i = 0
    while i < len(matches):
        start, end = _reference(matches, i, bare_ok)
        if start is None:
            i += 1
            continue
        after = matches[end + 1] if end + 1 < len(matches) else None
        if _anchors_type(matches, start):
            i = end + 1
            continue
        if after is not None and after.group() == ".":  # a column of it
            out.append(sql[copied : matches[start].start()])
            copied = matches[end].start()
            i = end + 1
            continue
        aliased = after is not None and (
            after.group().upper() == "AS"
            or (after.lastgroup in ("word", "qid") and after.group().upper() not in _NOT_ALIAS)
        )
        out.append(sql[copied : matches[start].start()])
        out.append(table if aliased else f"{table} AS PROCESSLIST")
        copied = matches[end].end()
        i = end + 1
    if not out:
        return sql
    out.append(sql[copied:])
    return "".join(out)


def _anchors_type(matches: list[re.Match[str]], i: int) -> bool:
    """Does the reference at ``i`` follow TYPE OF (a declaration's type anchor)?"""
    return i >= 2 and _name(matches[i - 1]) == "OF" and _name(matches[i - 2]) == "TYPE"


def _name(match: re.Match[str]) -> str | None:
    if match.lastgroup == "word":
        return match.group().upper()
    if match.lastgroup == "qid":
        return match.group()[1:-1].replace("``", "`").upper()
    return None


def _reference(matches: list[re.Match[str]], i: int, bare_ok: bool) -> tuple[int | None, int]:
    """(first, last) token index of a PROCESSLIST table reference starting at ``i``."""
    if _name(matches[i]) == "INFORMATION_SCHEMA" and i + 2 < len(matches):
        if matches[i + 1].group() == "." and _name(matches[i + 2]) == "PROCESSLIST":
            return i, i + 2
    if (
        bare_ok
        and _name(matches[i]) == "PROCESSLIST"
        and i > 0
        and matches[i - 1].group().upper() in ("FROM", "JOIN", ",")
    ):
        return i, i
    return None, i


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    # Hex, so that no sql_mode or client character set can change where it ends.
    return f"CONVERT(X'{str(value).encode().hex()}' USING utf8mb4)"


def _derived(rows: list[dict[str, object]]) -> str:
    """A derived table with information_schema.PROCESSLIST's columns and types."""
    keys = ("Id", "User", "Host", "db", "Command", "Time", "State", "Info")
    typed = [
        "CAST(0 AS UNSIGNED) AS ID", "CAST('' AS CHAR(128)) AS USER",
        "CAST('' AS CHAR(64)) AS HOST", "CAST(NULL AS CHAR(64)) AS DB",
        "CAST('' AS CHAR(16)) AS COMMAND", "CAST(0 AS SIGNED) AS TIME",
        "CAST('' AS CHAR(64)) AS STATE", "CAST(NULL AS CHAR(65535)) AS INFO",
        "CAST(0 AS DECIMAL(22,3)) AS TIME_MS", "CAST(0 AS SIGNED) AS STAGE",
        "CAST(0 AS SIGNED) AS MAX_STAGE", "CAST(0 AS DECIMAL(7,3)) AS PROGRESS",
        "CAST(0 AS SIGNED) AS MEMORY_USED", "CAST(0 AS SIGNED) AS MAX_MEMORY_USED",
        "CAST(0 AS SIGNED) AS EXAMINED_ROWS", "CAST(0 AS SIGNED) AS QUERY_ID",
        "CAST(NULL AS BINARY(65535)) AS INFO_BINARY", "CAST(0 AS SIGNED) AS TID",
    ]  # fmt: skip
    branches = ["SELECT " + ", ".join(typed) + " FROM DUAL WHERE FALSE"]
    # Each number cast as the first branch types it: a bare literal would make the union's
    # column DECIMAL.
    casts = {"Id": "UNSIGNED", "Time": "SIGNED"}
    for r in rows:
        values = (
            f"CAST({int(r[k])} AS {casts[k]})"  # type: ignore[call-overload]
            if k in casts and r[k] is not None
            else _literal(r[k])
            for k in keys
        )
        info = r["Info"]
        # The columns myguard does not follow: a session's progress and memory are the
        # backend's, and its query ids and thread ids would name backend threads.
        rest = (
            f"CAST({int(r['Time']) * 1000} AS DECIMAL(22,3))",  # type: ignore[call-overload]
            "0", "0", "CAST(0 AS DECIMAL(7,3))", "0", "0", "0", "0",
            "NULL" if info is None else f"X'{str(info).encode().hex()}'",
            "0",
        )  # fmt: skip
        branches.append("SELECT " + ", ".join((*values, *rest)))
    return "(" + " UNION ALL ".join(branches) + ")"
