"""Statements sqlglot parses well: queries, DML and table DDL."""

from __future__ import annotations

import logging
from contextvars import ContextVar

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from myguard._fast import load
from myguard.analysis.extract import Extract, extract

log = logging.getLogger("myguard.analysis")
_fingerprint = load("fingerprint")
_MYSQL = Dialect.get_or_raise("mysql")

_QUERY_KINDS: tuple[tuple[type[exp.Expression], str], ...] = (
    (exp.Insert, "insert"),
    (exp.Update, "update"),
    (exp.Delete, "delete"),
    (exp.Query, "select"),
    (exp.Values, "select"),
)

# sqlglot tries each JOIN that lacks ON/USING as the start of a nested join and parses the
# rest again when that fails: time doubles with every such JOIN (24 of them take minutes).
MAX_OPEN_JOINS = 12
_JOIN_PREFIX = frozenset(
    {TokenType.LEFT, TokenType.RIGHT, TokenType.FULL, TokenType.INNER, TokenType.OUTER}
)
_NO_NESTING = frozenset({TokenType.NATURAL, TokenType.CROSS})


_PARSE_FAILED = "sqlglot could not parse the statement"


class Unparseable(ValueError):
    """sqlglot cannot parse the text, or would take too long to."""


def parse(sql: str) -> exp.Expression:
    """One statement's tree; raises Unparseable, also for a bare ``Command``."""
    warned = _current_sql.set(sql)
    try:
        tokens = _MYSQL.tokenize(sql)
        too_costly = _too_costly(tokens)
        if too_costly:
            raise Unparseable(too_costly)
        trees = _MYSQL.parser().parse(tokens, sql)
    except Unparseable:
        raise
    except (ParseError, TokenError, ValueError):
        raise Unparseable(_PARSE_FAILED) from None
    except RecursionError:
        raise Unparseable("the statement is nested too deeply") from None
    finally:
        _current_sql.reset(warned)
    if len(trees) != 1 or trees[0] is None or isinstance(trees[0], exp.Command):
        raise Unparseable(_PARSE_FAILED)
    return trees[0]


def _too_costly(tokens: list[Token]) -> str | None:
    """Why parsing would take too long: more than MAX_OPEN_JOINS JOINs waiting for their
    ON/USING at once, counting those of enclosing parentheses (a retry of an outer JOIN
    parses everything after it again)."""
    open_joins = [0]
    for index, token in enumerate(tokens):
        kind = token.token_type
        if kind == TokenType.L_PAREN:
            open_joins.append(0)
        elif kind == TokenType.R_PAREN and len(open_joins) > 1:
            open_joins.pop()
        elif kind in (TokenType.ON, TokenType.USING) and open_joins[-1]:
            open_joins[-1] -= 1
        elif kind in (TokenType.JOIN, TokenType.STRAIGHT_JOIN) and _may_nest(tokens, index):
            open_joins[-1] += 1
            if sum(open_joins) > MAX_OPEN_JOINS:
                return (
                    f"more than {MAX_OPEN_JOINS} JOINs without ON/USING are too costly to analyse"
                )
    return None


def _may_nest(tokens: list[Token], index: int) -> bool:
    """Whether the JOIN at ``index`` is one sqlglot retries as a nested join (not NATURAL or
    CROSS)."""
    index -= 1
    while index >= 0 and tokens[index].token_type in _JOIN_PREFIX:
        index -= 1
    return index < 0 or tokens[index].token_type not in _NO_NESTING


def query_kind(tree: exp.Expression) -> str | None:
    """select / insert / update / delete for a query or DML tree, else None."""
    for node_type, kind in _QUERY_KINDS:
        if isinstance(tree, node_type):
            return kind
    return None


def analyse(sql: str, current_db: str | None) -> tuple[exp.Expression, Extract]:
    """Parse and extract; raises Unparseable."""
    tree = parse(sql)
    try:
        return tree, extract(tree, current_db)
    except RecursionError:
        raise Unparseable("the statement is nested too deeply") from None


# sqlglot logs a warning for every statement it falls back on or half-understands (a JSON
# path, unsupported syntax): one debug line per statement fingerprint is enough.
_current_sql: ContextVar[str | None] = ContextVar("sqlglot_sql", default=None)
_MAX_WARNED = 10_000
_warned: set[int] = set()


class _OncePerFingerprint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = _current_sql.get() or record.getMessage()
        key, shape = _fingerprint.fingerprint(text.encode("utf-8", "surrogateescape"))
        if key not in _warned:
            if len(_warned) >= _MAX_WARNED:
                _warned.clear()
            _warned.add(key)
            log.debug(
                "sqlglot: %s: %s", _reason(record.getMessage()), shape.decode(errors="replace")
            )
        return False


def _reason(message: str) -> str:
    """The warning without the statement or literals it quotes (they may hold secrets)."""
    if message.startswith("'") and "' contains" in message:
        message = message[message.rindex("' contains") + 2 :]
    return message.split(". ", 1)[0].split(":", 1)[0]


logging.getLogger("sqlglot").addFilter(_OncePerFingerprint())
