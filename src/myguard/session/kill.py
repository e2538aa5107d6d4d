"""Statements that name a session, read without I/O: the KILL myguard runs itself
(``parse_kill``), the SHOW EXPLAIN FOR it sends with the session's backend thread
(``explain_for``), and the refusal of statements that would name a backend thread, any
user's on the shared service account (``on_backend``). ``session.workers`` finds the
sessions they name, in any worker."""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Iterable
from dataclasses import dataclass

from myguard.analysis import Statement
from myguard.analysis.kinds import CODE_OBJECTS
from myguard.analysis.lexer import code_tokens, leading_words
from myguard.protocol.errors import (
    ER_KILL_DENIED_ERROR,
    ER_NOT_ALLOWED_COMMAND,
    ER_SET_CONSTANTS_ONLY,
    MySQLError,
)

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
        if hides_text(st):
            if code is None:
                code = " ".join(leading_words(text, -1))
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


def hides_text(st: Statement) -> bool:
    """Does ``st`` hold text the analysis does not see into (opaque or a stored program)?"""
    return st.opaque or (st.kind in ("create", "alter") and st.object_type in CODE_OBJECTS)


def reads_literals(statements: Iterable[Statement]) -> bool:
    """Do ``on_backend`` and ``backend_views.refusal`` read these statements' literals (text
    the analysis does not see into)? Then their answer holds for this text only, not for
    every text of its shape."""
    return any(hides_text(st) for st in statements)


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
