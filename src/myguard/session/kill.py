"""Statements that name a session: myguard maps the ids clients see to its own sessions,
in any worker, for KILL (run here) and SHOW EXPLAIN FOR (sent with the session's backend
thread id); the other workers' sessions for the process list; and the refusal of
statements that would name a backend thread, any user's on the shared service account."""

from __future__ import annotations

import ast
import asyncio
import json
import operator
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from myguard.analysis import Statement
from myguard.analysis.kinds import CODE_OBJECTS
from myguard.analysis.lexer import code_tokens
from myguard.protocol.errors import (
    ER_KILL_DENIED_ERROR,
    ER_NO_SUCH_THREAD,
    ER_NOT_ALLOWED_COMMAND,
    ER_SET_CONSTANTS_ONLY,
    ER_SPECIFIC_ACCESS_DENIED_ERROR,
    MySQLError,
)
from myguard.session import process_list
from myguard.session.registry import SessionRegistry

# KILL [HARD | SOFT] [CONNECTION | QUERY] id   (MariaDB and MySQL forms). The server takes
# any expression for the id; myguard takes integer arithmetic and CONNECTION_ID(), which it
# can work out itself: evaluating the rest on the backend would run SQL outside the rules
# (``KILL (SELECT secret FROM t)`` shows the value in the server's error).
_KILL = re.compile(
    rb"^\s*KILL\s+(?:(?:HARD|SOFT)\s+)?(?:(CONNECTION|QUERY)\s+)?(?!ID\b|USER\b)(.+?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_CONNECTION_ID = re.compile(rb"\bCONNECTION_ID\s*\(\s*\)", re.IGNORECASE)
_ARITHMETIC = re.compile(rb"[\d\s()+*-]+")
_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}
# Set by the supervisor: where its workers' unix sockets live.
RUNTIME_DIR_ENV = "MYGUARD_RUNTIME_DIR"
_KILL_ANY = re.compile(rb"^\s*KILL\b", re.IGNORECASE)
_KILL_WORD = re.compile(r"\bKILL\b", re.IGNORECASE).search
# SHOW EXPLAIN|ANALYZE [FORMAT=x] FOR id and EXPLAIN|ANALYZE|DESCRIBE [FORMAT=x] FOR
# CONNECTION id show the plan, and in a note the text, of the statement thread ``id`` runs.
_EXPLAIN_FOR = re.compile(
    r"\b(?:SHOW\s+(?:EXPLAIN|ANALYZE)(?:\s+FORMAT\s*=\s*\w+)?\s+FOR"
    r"|(?:EXPLAIN|ANALYZE|DESCRIBE|DESC)(?:\s+FORMAT\s*=\s*\w+)?\s+FOR\s+CONNECTION)\b",
    re.IGNORECASE,
).search
_EXPLAINS = frozenset({"show", "explain", "analyze"})
# The same statement standing alone, as the analysis gives it (comments gone).
_LONE_EXPLAIN_FOR = re.compile(
    r"\s*(?:SHOW\s+(?:EXPLAIN|ANALYZE)(?:\s+FORMAT\s*=\s*\w+)?\s+FOR"
    r"|(?:EXPLAIN|ANALYZE|DESCRIBE|DESC)(?:\s+FORMAT\s*=\s*\w+)?\s+FOR\s+CONNECTION)\s+"
    r"(.+?)\s*;?\s*",
    re.IGNORECASE | re.DOTALL,
).fullmatch
_KILL_ON_BACKEND = (
    "myguard: KILL runs only as a statement of its own, with a session id from this proxy; "
    "in a multi-statement text, a prepared statement, dynamic SQL or a stored program it "
    "would reach the backend's threads, every user's"
)
_EXPLAIN_ON_BACKEND = (
    "myguard: SHOW EXPLAIN/ANALYZE FOR and EXPLAIN FOR CONNECTION take a backend thread id, "
    "and every user's sessions run on the backend as one account: they would show other "
    "users' statements"
)


def on_backend(
    statements: Iterable[Statement], text: str, *, maps_explain: bool = False
) -> MySQLError | None:
    """The refusal for ``text`` (analysed as ``statements``) when it would name a backend
    thread, or None. ``maps_explain``: the caller maps a lone SHOW EXPLAIN FOR
    (``explain_for``) itself.

    Every session reaches the backend as the same service account, so a thread id there
    may be any user's session. myguard runs only a KILL sent as a statement of its own
    (``parse_kill``), with its own session ids, and maps the id of a SHOW EXPLAIN FOR sent
    as a statement of its own (``explain_for``). So no rule may let through a KILL in a
    multi-statement text, a COM_STMT_PREPARE or the literal of dynamic SQL, nor SHOW
    EXPLAIN FOR a thread anywhere, nor such words in text that runs out of the analysis'
    sight (a compound statement, opaque dynamic SQL, a stored program).

    The analysis may be the cached one of another text of the same shape, literals and
    all: words in hidden text are looked for in ``text`` itself (its code, not comments)."""
    statements = list(statements)
    if maps_explain and len(statements) == 1 and _lone_explain_for(statements[0]):
        return None
    code = None
    for st in statements:
        if st.kind == "kill":
            return MySQLError(ER_KILL_DENIED_ERROR, "HY000", _KILL_ON_BACKEND)
        if _hidden(st):
            if code is None:
                code = " ".join(m.group() for m in code_tokens(text))
            if _KILL_WORD(code) is not None:
                return MySQLError(ER_KILL_DENIED_ERROR, "HY000", _KILL_ON_BACKEND)
            if _EXPLAIN_FOR(code) is not None:
                return MySQLError(ER_NOT_ALLOWED_COMMAND, "42000", _EXPLAIN_ON_BACKEND)
        elif st.kind in _EXPLAINS and _EXPLAIN_FOR(st.sql) is not None:  # shown in its shape
            return MySQLError(ER_NOT_ALLOWED_COMMAND, "42000", _EXPLAIN_ON_BACKEND)
    return None


@dataclass(frozen=True, slots=True)
class KillRequest:
    target: int
    query_only: bool


@dataclass(frozen=True, slots=True)
class ExplainFor:
    """A lone SHOW EXPLAIN/ANALYZE FOR or EXPLAIN FOR CONNECTION: ``head`` is the client's
    text up to the id, ``target`` the id as the client wrote it."""

    head: str
    target: str

    def session_id(self) -> int:
        """The session it names: a number, in parentheses or not, as the server takes it."""
        digits = re.sub(r"[()\s]", "", self.target)
        if not digits.isascii() or not digits.isdigit():
            raise MySQLError(
                ER_SET_CONSTANTS_ONLY,
                "HY000",
                "You may only use constant expressions in this statement",
            )
        return int(digits)

    def on_thread(self, thread_id: int) -> str:
        """The statement as the backend gets it: naming the session's backend thread."""
        return f"{self.head}{thread_id}"


def _hidden(st: Statement) -> bool:
    """Does ``st`` hold text the analysis does not see into (opaque or a stored program)?"""
    return st.opaque or (st.kind in ("create", "alter") and st.object_type in CODE_OBJECTS)


def reads_literals(statements: Iterable[Statement]) -> bool:
    """Does ``on_backend`` read these statements' literals (text the analysis does not see
    into)? Then its answer holds for this text only, not for every text of its shape."""
    return any(_hidden(st) for st in statements)


def _lone_explain_for(st: Statement) -> bool:
    found = None if st.opaque or st.kind not in _EXPLAINS else _LONE_EXPLAIN_FOR(st.sql)
    return found is not None and ";" not in found[1]


def explain_for(statements: list[Statement], text: str) -> ExplainFor | None:
    """The SHOW EXPLAIN FOR that ``text`` is, when its ``statements`` are one and nothing
    else. The analysis may be the cached one of another text of the same shape: the id is
    read from ``text`` itself, after its last FOR or CONNECTION."""
    if len(statements) != 1 or not _lone_explain_for(statements[0]):
        return None
    tokens = code_tokens(text)
    while tokens and tokens[-1].group() == ";":
        tokens.pop()
    words = [i for i, m in enumerate(tokens) if m.group().upper() in ("FOR", "CONNECTION")]
    if not words or words[-1] + 1 == len(tokens):
        return None
    first, last = tokens[words[-1] + 1], tokens[-1]
    return ExplainFor(text[: first.start()], text[first.start() : last.end()])


def is_kill(sql: bytes) -> bool:
    """Is ``sql`` a KILL statement, which myguard runs (or refuses) itself?"""
    return _KILL_ANY.match(sql) is not None


def parse_kill(sql: bytes, session_id: int) -> KillRequest | None:
    """A KILL statement myguard handles, or None when ``sql`` is not a KILL;
    ``session_id`` is what CONNECTION_ID() gives.

    KILL forms myguard cannot map (``KILL USER``, ``KILL QUERY ID``) raise an error rather
    than reaching the backend, where the ids would refer to other users' connections.
    """
    if not is_kill(sql):
        return None
    m = _KILL.match(sql)
    if m is not None and b";" in m[2]:  # KILL n; SELECT ...: other statements follow
        raise MySQLError(ER_KILL_DENIED_ERROR, "HY000", _KILL_ON_BACKEND)
    target = None if m is None else _evaluate(_CONNECTION_ID.sub(b"%d" % session_id, m[2]))
    if target is None:
        raise MySQLError(
            ER_KILL_DENIED_ERROR,
            "HY000",
            "myguard: only KILL [CONNECTION | QUERY] <id> with an id from this proxy is"
            " supported; the id may be integer arithmetic and CONNECTION_ID()",
        )
    return KillRequest(target, (m[1] or b"").upper() == b"QUERY")


def _evaluate(expression: bytes) -> int | None:
    """The value of integer arithmetic (+, -, *, parentheses), wrapped to 64 bits as the
    server reads a thread id; None for anything else."""
    if len(expression) > 200 or not _ARITHMETIC.fullmatch(expression):
        return None
    try:
        tree = ast.parse(expression.decode("ascii").strip(), mode="eval").body
    except (SyntaxError, RecursionError, MemoryError):
        return None

    def value(node: ast.expr, depth: int = 0) -> int | None:
        if depth > 50:
            return None
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = value(node.operand, depth + 1)
            return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = value(node.left, depth + 1), value(node.right, depth + 1)
            if left is None or right is None or max(abs(left), abs(right)) >= 1 << 64:
                return None
            return _OPERATORS[type(node.op)](left, right)
        return None

    result = value(tree)
    return None if result is None else result % (1 << 64)


async def kill(registry: SessionRegistry, user: str, request: KillRequest) -> None:
    """Kill a session of ``user``; a user may kill only their own sessions.

    A session of another worker process is killed by that worker, asked over its unix
    socket in the runtime directory the supervisor shares with its workers.
    """
    runtime = os.environ.get(RUNTIME_DIR_ENV)
    if registry.find(request.target) is not None or not runtime:
        await kill_local(registry, user, request)
        return
    # Another worker's session: the one its id names first, then any on that backend thread.
    await kill_in_workers(Path(runtime), user, request, skip=registry.worker)


async def kill_local(registry: SessionRegistry, user: str, request: KillRequest) -> None:
    target = registry.find(request.target)
    if target is None:
        raise MySQLError(ER_NO_SUCH_THREAD, "HY000", f"Unknown thread id: {request.target}")
    if target.user != user:
        raise MySQLError(
            ER_KILL_DENIED_ERROR, "HY000", f"You are not owner of thread {request.target}"
        )
    await target.kill(request.query_only)


async def _request(path: Path, message: dict[str, object]) -> dict[str, object] | None:
    """Ask the worker behind ``path``; None when there is no such worker (any more)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 5)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(json.dumps(message).encode() + b"\n")
        await writer.drain()
        return json.loads(await asyncio.wait_for(reader.readline(), 30) or b"{}")
    finally:
        writer.close()


async def _ask(path: Path, target: int, message: dict[str, object]) -> dict[str, object]:
    """The reply of the worker behind ``path`` about session ``target``; its error raised."""
    reply = await _request(path, message)
    if reply is None:  # no such worker: the id names no live session
        raise MySQLError(ER_NO_SUCH_THREAD, "HY000", f"Unknown thread id: {target}")
    if "code" in reply:
        raise MySQLError(reply["code"], reply["sqlstate"], reply["message"])
    return reply


async def backend_thread(
    registry: SessionRegistry, user: str, sees_all: bool, target: int
) -> tuple[str, int | None]:
    """The backend and backend thread of session ``target``, in any worker, for SHOW
    EXPLAIN FOR by ``user`` (``sees_all``: a member of the process list groups)."""
    runtime = os.environ.get(RUNTIME_DIR_ENV)
    worker = SessionRegistry.worker_of(target)
    if not runtime or worker == registry.worker:
        return _thread_local(registry, user, sees_all, target)
    path = Path(runtime) / f"worker-{worker}.sock"
    reply = await _ask(path, target, {"explain": target, "user": user, "all": sees_all})
    thread = reply["thread"]
    return str(reply["backend"]), None if thread is None else int(thread)


def _thread_local(
    registry: SessionRegistry, user: str, sees_all: bool, target: int
) -> tuple[str, int | None]:
    session = registry.get(target)
    if session is None:
        raise MySQLError(ER_NO_SUCH_THREAD, "HY000", f"Unknown thread id: {target}")
    if session.user != user and not sees_all:
        raise MySQLError(
            ER_SPECIFIC_ACCESS_DENIED_ERROR,
            "42000",
            "myguard: SHOW EXPLAIN FOR another user's session is for the groups that see the"
            " process list (process_list_groups)",
        )
    if session.masks_literals:  # as in the process list, whoever asks
        raise MySQLError(
            ER_NOT_ALLOWED_COMMAND,
            "42000",
            f"myguard: session {target} has masking; the plan of its statement would show"
            " the statement's literals",
        )
    return session.backend_config.name, session.backend_thread_id


async def list_sessions(
    registry: SessionRegistry, user: str, sees_all: bool
) -> list[dict[str, object]]:
    """Process-list rows of the sessions ``user`` may see, in every worker."""
    rows = _local_rows(registry, user, sees_all)
    runtime = os.environ.get(RUNTIME_DIR_ENV)
    if runtime:
        mine = Path(runtime) / f"worker-{registry.worker}.sock"
        for path in sorted(Path(runtime).glob("worker-*.sock")):
            if path != mine:
                reply = await _request(path, {"list": True, "user": user, "all": sees_all})
                rows += (reply or {}).get("rows", [])
    return sorted(rows, key=lambda r: r["Id"])


async def worker_sessions(runtime: Path, user: str, sees_all: bool) -> list[dict[str, object]]:
    """Detailed rows (``process_list.detail_row``) of every worker's sessions that ``user``
    may see: the supervisor's view, asked over the workers' sockets in ``runtime``."""
    rows: list[dict[str, object]] = []
    for path in sorted(runtime.glob("worker-*.sock")):
        message = {"list": True, "user": user, "all": sees_all, "details": True}
        reply = await _request(path, message)
        rows += (reply or {}).get("rows", [])
    return sorted(rows, key=lambda r: r["Id"])


async def kill_in_workers(
    runtime: Path, user: str, request: KillRequest, skip: int | None = None
) -> None:
    """KILL asked of the workers (by the supervisor, or by worker ``skip``, which has
    looked at its own sessions): the owning worker first."""
    owner = runtime / f"worker-{SessionRegistry.worker_of(request.target)}.sock"
    mine = runtime / f"worker-{skip}.sock" if skip is not None else None
    for path in sorted(runtime.glob("worker-*.sock"), key=lambda p: p != owner):
        if path == mine:
            continue
        try:
            message = {"user": user, "target": request.target, "query_only": request.query_only}
            await _ask(path, request.target, message)
            return
        except MySQLError as exc:
            if exc.code != ER_NO_SUCH_THREAD:
                raise
    raise MySQLError(ER_NO_SUCH_THREAD, "HY000", f"Unknown thread id: {request.target}")


def _local_rows(
    registry: SessionRegistry, user: str, sees_all: bool, details: bool = False
) -> list[dict[str, object]]:
    make = process_list.detail_row if details else process_list.row
    return [make(s) for s in process_list.visible(registry, user, sees_all)]


async def serve_kill_requests(registry: SessionRegistry, path: Path) -> asyncio.Server:
    """Answer other workers' KILL, process-list and SHOW EXPLAIN FOR requests for this
    worker's sessions."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            message = json.loads(await reader.readline())
            if message.get("list"):
                rows = _local_rows(
                    registry,
                    str(message["user"]),
                    bool(message["all"]),
                    bool(message.get("details")),
                )
                reply: dict[str, object] = {"rows": rows}
            elif "explain" in message:
                backend, thread = _thread_local(
                    registry, str(message["user"]), bool(message["all"]), int(message["explain"])
                )
                reply = {"backend": backend, "thread": thread}
            else:
                request = KillRequest(int(message["target"]), bool(message["query_only"]))
                await kill_local(registry, str(message["user"]), request)
                reply = {"ok": True}
        except MySQLError as exc:
            reply = {"code": exc.code, "sqlstate": exc.sqlstate, "message": exc.message}
        except (ValueError, KeyError, TypeError):
            reply = {
                "code": ER_KILL_DENIED_ERROR,
                "sqlstate": "HY000",
                "message": "malformed request between workers",
            }
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()
        writer.close()

    path.unlink(missing_ok=True)
    return await asyncio.start_unix_server(handle, str(path))
