"""Code the server runs later or on its own, outside myguard: trigger, event and stored
routine bodies.

For an identity with masking such code may copy masked values to where the identity reads
them in clear: a trigger fires on its writes, an event runs on a schedule, a routine runs
with its definer's rights. ``parse_created`` finds the body in CREATE TRIGGER / EVENT /
FUNCTION / PROCEDURE and ALTER EVENT ... DO; ``split_body`` cuts a body into statements
myguard can analyse: one statement, ``RETURN expr`` of a function, or BEGIN ... END around
plain statements (queries, INSERT, UPDATE, DELETE, SET). Anything else (declarations,
control flow, CALL, dynamic SQL) is None: cannot tell. ``body_reads`` is every column the
statements read, with a trigger's NEW/OLD row as its table's columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp, tokens
from sqlglot.dialects.mysql import MySQL

from myguard.masking.expand import SchemaLookup, ViewLookup
from myguard.masking.lineage import analyze
from myguard.masking.resolve import SourceColumn, Sources, union

__all__ = ["Created", "body_reads", "parse_created", "split_body"]

# Statements a body may hold and still be analysed.
_PLAIN = (exp.Query, exp.Insert, exp.Update, exp.Delete, exp.Set)
_UNREAD = (tokens.TokenType.STRING, tokens.TokenType.IDENTIFIER)
# The first word of a routine body after its parameters, RETURNS type and characteristics.
_BODY_START = frozenset(
    """RETURN BEGIN SELECT INSERT UPDATE DELETE REPLACE SET WITH CALL IF CASE WHILE LOOP
    REPEAT DECLARE DO VALUES TABLE LOAD PREPARE EXECUTE""".split()
)


@dataclass(frozen=True, slots=True)
class Created:
    """The code a CREATE/ALTER statement stores: ``kind`` trigger, event, function or
    procedure; ``body`` None when it stores none (ALTER EVENT e ENABLE); ``table`` the
    table a trigger fires on (database None: the current one); ``params`` a routine's
    parameter names, lower case."""

    kind: str
    name: str
    body: str | None
    table: tuple[str | None, str] | None = None
    params: tuple[str, ...] = ()


def _word(token: tokens.Token) -> str:
    """A keyword or bare name, upper case; "" for strings and quoted names."""
    return "" if token.token_type in _UNREAD else token.text.upper()


def _name(found: list[tokens.Token], i: int) -> tuple[list[str], int]:
    """The parts of a possibly qualified name starting at ``found[i]``, and the index after."""
    parts = [found[i].text]
    i += 1
    while i + 1 < len(found) and found[i].token_type == tokens.TokenType.DOT:
        parts.append(found[i + 1].text)
        i += 2
    return parts, i


def parse_created(sql: str, kind: str) -> Created | None:
    """The object and body of a CREATE (or ALTER EVENT) of ``kind``; None when it cannot
    be read."""
    try:
        found = MySQL().tokenize(sql)
    except sqlglot.errors.SqlglotError:
        return None
    words = [_word(t) for t in found]
    if kind.upper() not in words:
        return None
    i = words.index(kind.upper()) + 1
    if words[i : i + 3] == ["IF", "NOT", "EXISTS"]:
        i += 3
    if i >= len(found):
        return None
    parts, i = _name(found, i)
    name = ".".join(parts)
    rest = words[i:]
    if kind == "event":
        if "DO" not in rest:
            return Created(kind, name, None) if words[0] == "ALTER" else None
        do = found[i + rest.index("DO")]
        return Created(kind, name, sql[do.end + 1 :].strip())
    if kind == "trigger":
        return _trigger(sql, found, words, i, name)
    return _routine(sql, found, words, i, kind, name)


def _trigger(
    sql: str, found: list[tokens.Token], words: list[str], i: int, name: str
) -> Created | None:
    if (
        len(words) < i + 4
        or words[i] not in ("BEFORE", "AFTER")
        or words[i + 1] not in ("INSERT", "UPDATE", "DELETE")
        or words[i + 2] != "ON"
    ):
        return None
    table, i = _name(found, i + 3)
    if words[i : i + 3] != ["FOR", "EACH", "ROW"]:
        return None
    i += 3
    if i < len(words) and words[i] in ("FOLLOWS", "PRECEDES"):
        _, i = _name(found, i + 1)
    if i >= len(found) or len(table) > 2:
        return None
    where = (table[0], table[1]) if len(table) == 2 else (None, table[0])
    return Created("trigger", name, sql[found[i].start :].strip(), table=where)


def _routine(
    sql: str, found: list[tokens.Token], words: list[str], i: int, kind: str, name: str
) -> Created | None:
    if i >= len(found) or found[i].token_type != tokens.TokenType.L_PAREN:
        return None
    depth, params, expect_name = 0, [], True
    while i < len(found):
        token = found[i]
        if token.token_type == tokens.TokenType.L_PAREN:
            depth += 1
        elif token.token_type == tokens.TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                break
        elif depth == 1 and token.token_type == tokens.TokenType.COMMA:
            expect_name = True
        elif depth == 1 and expect_name and words[i] not in ("IN", "OUT", "INOUT"):
            params.append(token.text.lower())
            expect_name = False
        i += 1
    depth = 0
    for j in range(i + 1, len(found)):
        token_type = found[j].token_type
        depth += (token_type == tokens.TokenType.L_PAREN) - (token_type == tokens.TokenType.R_PAREN)
        starts = words[j] in _BODY_START and not (words[j] == "SET" and words[j - 1] == "CHARACTER")
        label = j + 1 < len(found) and found[j + 1].token_type == tokens.TokenType.COLON
        if depth == 0 and (starts or label):
            return Created(kind, name, sql[found[j].start :].strip(), params=tuple(params))
    return None


def split_body(body: str) -> list[exp.Expression] | None:
    """The statements of a body, or None when it holds anything but plain statements.
    A function's ``RETURN expr`` becomes ``SELECT expr``."""
    try:
        found = MySQL().tokenize(body)
    except sqlglot.errors.SqlglotError:
        return None
    words = [_word(t) for t in found]
    if words and words[0] == "RETURN":
        body = "SELECT " + body[found[0].end + 1 :]
    elif "BEGIN" in words[:3]:
        start = words.index("BEGIN")
        ends = [j for j, w in enumerate(words) if w == "END"]
        if start not in (0, 2) or not ends or len(words) - ends[-1] > 2:
            return None
        body = body[found[start].end + 1 : found[ends[-1]].start]
    try:
        trees = [t for t in sqlglot.parse(body, read="mysql") if t is not None]
    except (sqlglot.errors.SqlglotError, ValueError):
        return None
    if not all(isinstance(t, _PLAIN) for t in trees):
        return None
    return trees


def body_reads(
    statements: list[exp.Expression],
    *,
    db: str | None,
    schema: SchemaLookup,
    views: ViewLookup,
    row: tuple[str, str] | None = None,
    params: tuple[str, ...] = (),
) -> Sources:
    """Every column the statements read (results, copies, predicates, everything the
    lineage analysis finds), None when that cannot be told. ``row``: a trigger's table,
    which NEW.col and OLD.col read; ``params``: a routine's parameter names, which read
    nothing of their own (their arguments' lineage belongs to the call)."""
    out: set[SourceColumn] = set()
    for tree in statements:
        tree = tree.copy()
        for col in list(tree.find_all(exp.Column)):
            qualifier = col.table.lower()
            if row is not None and qualifier in ("new", "old") and not col.args.get("db"):
                out.add(SourceColumn(row[0], row[1], col.name.lower()))
            elif qualifier or col.name.lower() not in params:
                continue
            # A user variable reads no table, parses wherever the column did (SET NEW.a = ...)
            col.replace(exp.Parameter(this=exp.var(f"myguard_{qualifier}_{col.name}")))
        lineage = analyze(tree.sql("mysql"), db=db, schema=schema, views=views)
        if lineage.columns is None:
            return None
        found = union([*lineage.columns, *(f.sources for f in lineage.findings)])
        if found is None:
            return None
        out |= found
    return frozenset(out)
