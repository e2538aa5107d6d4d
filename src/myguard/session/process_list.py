"""The process list as myguard's users should see it.

Every session reaches the backend as the same service account, so the backend's own
process list would show each user every other user's statements, under thread ids the
client never saw. ``SHOW [FULL] PROCESSLIST`` and ``information_schema.PROCESSLIST`` are
answered from myguard's sessions instead: a user sees their own, members of
``process_list_groups`` see all; ids are session ids; the statement of a session with
masking has its literals redacted.

A busy session's State is the one its backend thread reports (``User lock``, ``Waiting
for table metadata lock``, ``Sending data``...: what tools and DBAs wait on or look for),
asked of the backend by thread id (``state_query``), never the backend's statement texts.

Pure functions: the rows, the SHOW answer's columns, and the rewrite that puts the rows in
place of ``information_schema.PROCESSLIST`` (so any SELECT over it, with its WHERE, ORDER
BY and joins, runs on the backend against myguard's rows).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Protocol

from myguard.analysis.lexer import code_tokens, leading_words
from myguard.audit.redact import redact_literals
from myguard.protocol.column_types import (
    BINARY_FLAG,
    MYSQL_TYPE_DOUBLE,
    MYSQL_TYPE_LONG,
    MYSQL_TYPE_LONG_BLOB,
    MYSQL_TYPE_LONGLONG,
    NOT_NULL_FLAG,
)
from myguard.protocol.errors import ER_NOT_ALLOWED_COMMAND, MySQLError
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
EXECUTING = "executing"  # a busy session's state until its backend thread's is known
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
    backend_config: object  # its ``name``
    backend_thread_id: int | None


def row(session: Listed, now: float | None = None) -> dict[str, object]:
    """One session as a process-list row (full statement)."""
    now = time.monotonic() if now is None else now
    text = session.current_statement if session.busy else None
    if text is not None and session.masks_literals:
        text = redact_literals(text)
    if session.held_request is not None:
        state = f"waiting for approval {session.held_request}"
    else:
        state = EXECUTING if session.busy else ""
    return {
        "Id": session.id,
        "User": session.user,
        "Host": session.client_address,
        "db": session.database,
        "Command": "Query" if session.busy else "Sleep",
        "Time": int(now - session.last_active),
        "State": state,
        "Info": text,
        "Backend": getattr(session.backend_config, "name", None),
        "Thread": session.backend_thread_id,  # on that backend; not a column
    }


def state_query(rows: list[dict[str, object]], backend: str, asking: int) -> str | None:
    """The question for the backend states of the busy sessions among ``rows`` on
    ``backend`` (thread ids are the server's), other than ``asking`` (its thread is idle
    while it asks); None when there are none."""
    threads = sorted(
        {
            int(r["Thread"])  # type: ignore[call-overload]
            for r in rows
            if r["State"] == EXECUTING and r.get("Backend") == backend
            and r.get("Thread") is not None and r["Id"] != asking
        }
    )  # fmt: skip
    if not threads:
        return None
    ids = ", ".join(map(str, threads))
    return f"SELECT ID, STATE FROM information_schema.PROCESSLIST WHERE ID IN ({ids})"


def with_backend_states(
    rows: list[dict[str, object]], backend: str, found: list[list[str | None]]
) -> list[dict[str, object]]:
    """``rows`` with the busy ones' State as their backend threads report it (``found``:
    the rows of ``state_query``; an empty state keeps myguard's)."""
    states = {int(t): state for t, state in found if t is not None and state}
    out = []
    for r in rows:
        state = states.get(r.get("Thread"))  # type: ignore[arg-type]
        if state is not None and r["State"] == EXECUTING and r.get("Backend") == backend:
            r = {**r, "State": state}
        out.append(r)
    return out


def detail_row(session: Listed, now: float | None = None) -> dict[str, object]:
    """``row`` and what the web console shows besides: groups, client program, backend."""
    out = row(session, now)
    identity = getattr(session, "identity", None)
    out["Groups"] = sorted(identity.groups) if identity is not None else []
    out["Program"] = (getattr(session, "attributes", None) or {}).get("program_name")
    out["Environment"] = getattr(session.backend_config, "environment", None)
    out["Held"] = session.held_request
    return out


def visible(sessions: Iterable[Listed], user: str, sees_all: bool) -> list[Listed]:
    return sorted((s for s in sessions if sees_all or s.user == user), key=lambda s: s.id)


def show_full(sql: str) -> bool | None:
    """For ``SHOW [FULL] PROCESSLIST``: whether FULL; None for any other statement. Read
    as the server reads it: comments anywhere, an executable comment's text as code."""
    words = leading_words(sql, -1)  # all of them: nothing may follow
    while words and words[-1] == ";":
        words.pop()
    if words in (["SHOW", "PROCESSLIST"], ["SHOW", "FULL", "PROCESSLIST"]):
        return len(words) == 3
    return None


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
_REFUSED_PREPARED = (
    "myguard: the process list is answered to text queries only; a prepared statement "
    "would read the backend's list of every user's sessions"
)


def refusal(
    sql: str, *, prepared: bool = False, current_db: str | None = None
) -> MySQLError | None:
    """The error for a statement naming the process list where myguard's rows cannot take
    its place (a COM_STMT_PREPARE, see ``unreachable``), or None. A prepared statement is
    refused when it reads the list, as the text rewrite finds it (``with_rows``); the word
    in a string or a ``TYPE OF`` anchor reads nothing."""
    if prepared:
        reads = mentions(sql.lower()) and (
            show_full(sql) is not None or with_rows(sql, [], current_db) != sql
        )
        reason = _REFUSED_PREPARED if reads else None
    else:
        reason = unreachable(sql)
    return None if reason is None else MySQLError(ER_NOT_ALLOWED_COMMAND, "42000", reason)


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
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    # Hex, so that no sql_mode or client character set can change where it ends.
    return f"CONVERT(X'{str(value).encode().hex()}' USING utf8mb4)"


def _info_binary(row: dict[str, object]) -> bytes | None:
    info = row["Info"]
    return None if info is None else str(info).encode()


# information_schema.PROCESSLIST's columns: name, the cast that types it, the value in the
# typing branch, and where a row's value comes from (None: a value myguard does not follow,
# as a session's progress and memory are the backend's and its query and thread ids would
# name backend threads). Numbers are cast like the typing branch: a bare literal would
# make the union's column DECIMAL.
_COLUMNS: tuple[tuple[str, str, str, object], ...] = (
    ("ID", "CAST({} AS UNSIGNED)", "0", "Id"),
    ("USER", "CAST({} AS CHAR(128))", "''", "User"),
    ("HOST", "CAST({} AS CHAR(64))", "''", "Host"),
    ("DB", "CAST({} AS CHAR(64))", "NULL", "db"),
    ("COMMAND", "CAST({} AS CHAR(16))", "''", "Command"),
    ("TIME", "CAST({} AS SIGNED)", "0", "Time"),
    ("STATE", "CAST({} AS CHAR(64))", "''", "State"),
    ("INFO", "CAST({} AS CHAR(65535))", "NULL", "Info"),
    ("TIME_MS", "CAST({} AS DECIMAL(22,3))", "0", lambda r: int(r["Time"]) * 1000),
    ("STAGE", "CAST({} AS SIGNED)", "0", None),
    ("MAX_STAGE", "CAST({} AS SIGNED)", "0", None),
    ("PROGRESS", "CAST({} AS DECIMAL(7,3))", "0", None),
    ("MEMORY_USED", "CAST({} AS SIGNED)", "0", None),
    ("MAX_MEMORY_USED", "CAST({} AS SIGNED)", "0", None),
    ("EXAMINED_ROWS", "CAST({} AS SIGNED)", "0", None),
    ("QUERY_ID", "CAST({} AS SIGNED)", "0", None),
    ("INFO_BINARY", "CAST({} AS BINARY(65535))", "NULL", _info_binary),
    ("TID", "CAST({} AS SIGNED)", "0", None),
)


def _value(row: dict[str, object], cast: str, source: object) -> str:
    if source is None:
        return cast.format(0)
    value = row[source] if isinstance(source, str) else source(row)  # type: ignore[operator]
    return cast.format(value) if isinstance(value, int) else _literal(value)


def _derived(rows: list[dict[str, object]]) -> str:
    """A derived table with information_schema.PROCESSLIST's columns and types."""
    typing = ", ".join(f"{cast.format(zero)} AS {name}" for name, cast, zero, _ in _COLUMNS)
    branches = [f"SELECT {typing} FROM DUAL WHERE FALSE"]
    for r in rows:
        branches.append("SELECT " + ", ".join(_value(r, c, src) for _, c, _, src in _COLUMNS))
    return "(" + " UNION ALL ".join(branches) + ")"
