"""MariaDB syntax that sqlglot's MySQL dialect misreads or cannot parse, rewritten to what
it reads as the server does, for the analysis and the masking lineage.

Statement modifiers: sqlglot parses ``UPDATE LOW_PRIORITY t SET ...`` as an update of table
``LOW_PRIORITY`` aliased ``t``, ``DELETE QUICK FROM t`` as a delete from ``QUICK`` and
``SELECT SQL_CACHE a`` as column ``SQL_CACHE`` named ``a``, and gives up on ``UPDATE
IGNORE`` or ``INSERT DELAYED``: a rule on ``t``, or on the tag of ``a``, would not see the
statement. The server reads these words as modifiers wherever they stand here (they are
reserved, or read as the modifier first); none changes which tables or columns a
statement touches, so they are left out. (``STRAIGHT_JOIN`` between two tables is a join
and stays.)

Sequences: ``NEXT VALUE FOR s`` and ``PREVIOUS VALUE FOR s`` become the ``NEXTVAL(s)`` and
``LASTVAL(s)`` they mean.

ODBC escapes, which BI tools send through ODBC drivers and the server takes as they are:
``{d '2024-01-31'}``, ``{t ...}``, ``{ts ...}`` become ``DATE '...'`` and the like, and
``{oj t1 LEFT OUTER JOIN t2 ON ...}`` the join inside.

Table value constructors wherever a query stands (a statement, a CTE body, a derived table,
a subquery, after UNION): ``VALUES (a, b), (c, d)`` becomes ``SELECT a, b UNION ALL SELECT
c, d``, which sqlglot parses everywhere and whose columns the lineage sees as the literals
they are (ORMs such as SQLAlchemy put ``values()`` in a CTE). In ``ON DUPLICATE KEY
UPDATE``, ``VALUES(t.c)`` becomes ``VALUES(c)``: the column can only be the inserted
table's, and sqlglot reads only the bare name there.

Older forms MariaDB still takes: ``GROUP BY a DESC`` (the order of the groups) loses its
ASC/DESC; a multi-table ``DELETE t1.* FROM ...`` (or ``DELETE FROM t1.* USING ...``) names
its targets without ``.*``; and ``UPDATE (t1 JOIN t2 ON ...) SET`` its joined tables without
the parentheses. None changes which tables or columns the statement touches.

``DEFAULT(c)``, the column's default value (``INSERT ... VALUES (DEFAULT(c))``, ``UPDATE t
SET c = DEFAULT(c)``): sqlglot cannot parse it, or reads ``SELECT DEFAULT(c)`` as a column
``DEFAULT`` named ``c``; written `` `DEFAULT`(c) `` it is the call it is, of column ``c``.
Only in queries and data changes: in a table definition ``DEFAULT (expr)`` is a clause.
"""

from __future__ import annotations

import re
from dataclasses import replace

from myguard.analysis.lexer import LexError, Token, render, tokenize
from myguard.analysis.tokens import find_word, is_word

# Modifiers right after the statement's first word (MariaDB's INSERT/REPLACE/UPDATE/DELETE).
_AFTER_FIRST = {
    "INSERT": frozenset({"LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE"}),
    "REPLACE": frozenset({"LOW_PRIORITY", "DELAYED"}),
    "UPDATE": frozenset({"LOW_PRIORITY", "IGNORE"}),
    "DELETE": frozenset({"LOW_PRIORITY", "QUICK", "IGNORE"}),
}
# SELECT's options, which may come in any order before the select list. sqlglot takes
# SQL_CACHE for a column and fails on others before DISTINCT; only the duplicate-removing
# ones change the result, and they stay.
_SELECT_HINTS = frozenset(
    {
        "HIGH_PRIORITY", "STRAIGHT_JOIN", "SQL_SMALL_RESULT", "SQL_BIG_RESULT",
        "SQL_BUFFER_RESULT", "SQL_CACHE", "SQL_NO_CACHE", "SQL_CALC_FOUND_ROWS",
    }
)  # fmt: skip
_SELECT_OPTIONS = _SELECT_HINTS | {"ALL", "DISTINCT", "DISTINCTROW"}
_WORDS = frozenset().union(*_AFTER_FIRST.values(), _SELECT_HINTS)
# Text that may hold something to rewrite: a modifier, a sequence call, VALUES, an ODBC
# escape, an ordered GROUP BY, a ``.*`` target, a parenthesised UPDATE target or DEFAULT(.
_MAY_HOLD = re.compile(
    r"\b(?:" + "|".join(sorted(_WORDS | {"VALUE", "VALUES", "ASC", "DESC", "DEFAULT"})) + r")\b|\{"
    r"|\.\s*\*|^\s*UPDATE\b[^(]*\(",
    re.IGNORECASE,
).search


def for_sqlglot(tokens: list[Token]) -> list[Token]:
    """One statement's tokens as sqlglot is to get them (the same list when unchanged)."""
    tokens = _without_escapes(_without_modifiers(tokens))
    return _default_calls(_older_forms(_values(_sequence_calls(tokens))))


# Statements whose DEFAULT( can only be the function (not a table definition's clause).
_DATA_STATEMENTS = frozenset(
    {"SELECT", "WITH", "INSERT", "REPLACE", "UPDATE", "DELETE", "VALUES", "TABLE"}
)


def _default_calls(tokens: list[Token]) -> list[Token]:
    """``DEFAULT(c)`` as `` `DEFAULT`(c) ``, which sqlglot reads as the call it is."""
    first = tokens[0] if tokens else None
    if first is None or not (first.text == "(" or first.upper in _DATA_STATEMENTS):
        return tokens
    calls = [
        index
        for index, token in enumerate(tokens[:-1])
        if token.kind == "word"
        and token.upper == "DEFAULT"
        and tokens[index + 1].text == "("
        and not tokens[index + 1].gap
    ]
    if not calls:
        return tokens
    out = list(tokens)
    for index in calls:
        out[index] = Token("qid", "`DEFAULT`", "`DEFAULT`", tokens[index].gap)
    return out


# The clauses a GROUP BY list ends at (or the parenthesis around it).
_AFTER_GROUP_BY = frozenset(
    {"HAVING", "ORDER", "LIMIT", "WINDOW", "WITH", "UNION", "EXCEPT", "INTERSECT", "INTO",
     "FOR", "LOCK", "PROCEDURE", "GROUP"}
)  # fmt: skip


def _older_forms(tokens: list[Token]) -> list[Token]:
    """``GROUP BY a DESC``, ``DELETE t1.* FROM``, ``UPDATE (t1 JOIN t2 ...) SET`` (after
    ``_without_modifiers``: the statement's second token is its first table or FROM)."""
    drop = _group_order_words(tokens)
    if is_word(tokens, 0, "DELETE"):
        # Its targets end at FROM, or after DELETE FROM at USING (-1: a one-table DELETE).
        end = (
            find_word(tokens, "USING", 2)
            if is_word(tokens, 1, "FROM")
            else find_word(tokens, "FROM", 1)
        )
        for index in range(1, end - 1):
            if tokens[index].text == "." and tokens[index + 1].text == "*":
                drop.update((index, index + 1))
    elif is_word(tokens, 0, "UPDATE") and len(tokens) > 1 and tokens[1].text == "(":
        close = _closing(tokens, 1)
        if is_word(tokens, close + 1, "SET"):
            drop.update((1, close))
    if not drop:
        return tokens
    out: list[Token] = []
    gap = False  # a dropped token's space goes to the next one kept: UPDATE (t1 -> UPDATE t1
    for index, token in enumerate(tokens):
        if index in drop:
            gap = gap or token.gap
        else:
            out.append(replace(token, gap=True) if gap and not token.gap else token)
            gap = False
    return out


def _group_order_words(tokens: list[Token]) -> set[int]:
    """The indexes of ASC and DESC in GROUP BY lists."""
    found: set[int] = set()
    grouping: list[bool] = [False]  # per parenthesis depth: inside a GROUP BY list
    for index, token in enumerate(tokens):
        if token.kind == "op" and token.text == "(":
            grouping.append(False)
        elif token.kind == "op" and token.text == ")":
            if len(grouping) > 1:
                grouping.pop()
        elif token.kind == "word":
            if token.upper == "BY" and is_word(tokens, index - 1, "GROUP"):
                grouping[-1] = True
            elif token.upper in _AFTER_GROUP_BY:
                grouping[-1] = False
            elif token.upper in ("ASC", "DESC") and grouping[-1]:
                found.add(index)
    return found


def _values(tokens: list[Token]) -> list[Token]:
    """Table value constructors as queries, and ``VALUES(t.c)`` as ``VALUES(c)``."""
    if not any(t.kind == "word" and t.upper == "VALUES" for t in tokens):
        return tokens
    # After ON DUPLICATE KEY UPDATE, VALUES(c) is the function: COALESCE(VALUES(c), 0).
    update = next(
        (
            i
            for i, t in enumerate(tokens)
            if t.kind == "word" and t.upper == "DUPLICATE" and is_word(tokens, i + 1, "KEY")
        ),
        len(tokens),
    )
    out: list[Token] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.kind != "word" or token.upper != "VALUES":
            out.append(token)
            index += 1
            continue
        column = _qualified_column(tokens, index + 1) if index > update else None
        if column is not None:
            close = _closing(tokens, index + 1)
            out += [token, tokens[index + 1], column, tokens[close]]
            index = close + 1
            continue
        rows_end = _rows_end(tokens, index + 1)
        if rows_end is not None and index < update and _query_position(tokens, index):
            out += _as_selects(tokens[index + 1 : rows_end], token.gap)
            index = rows_end
            continue
        out.append(token)
        index += 1
    return out


def _query_position(tokens: list[Token], index: int) -> bool:
    """Does the VALUES at ``index`` stand where a query does (not an INSERT's rows)?"""
    if index == 0 or (tokens[index - 1].kind == "op" and tokens[index - 1].text == "("):
        return True
    before = index - 2 if is_word(tokens, index - 1, "ALL", "DISTINCT") else index - 1
    return before >= 0 and is_word(tokens, before, *_SET_OPERATORS)


def _as_selects(rows: list[Token], gap: bool) -> list[Token]:
    """``(a, b), (c, d)`` as ``SELECT a, b UNION ALL SELECT c, d``: the columns of a table
    value constructor are its values, named as a SELECT without aliases names them."""
    out: list[Token] = []
    index = 0
    while index < len(rows):
        close = _closing(rows, index)
        if out:
            out += [Token("word", "UNION", "UNION", True), Token("word", "ALL", "ALL", True)]
        out.append(Token("word", "SELECT", "SELECT", gap or bool(out)))
        out += [
            replace(t, gap=True) if n == 0 else t for n, t in enumerate(rows[index + 1 : close])
        ]
        index = close + 2  # past the ``)`` and the ``,`` between rows
    return out


def _qualified_column(tokens: list[Token], start: int) -> Token | None:
    """The column of ``( name . name [. name] )`` at ``start``, or None."""
    if start >= len(tokens) or tokens[start].text != "(":
        return None
    end = _closing(tokens, start)
    if end == len(tokens) or end - start < 4:
        return None
    names = tokens[start + 1 : end]
    for position, name in enumerate(names):
        if (name.text == ".") != (position % 2 == 1) or (
            position % 2 == 0 and name.kind not in ("word", "qid")
        ):
            return None
    last = names[-1]
    return Token(last.kind, last.text, last.upper, False)


def _closing(tokens: list[Token], start: int) -> int:
    """The index of the ``)`` that closes the ``(`` at ``start`` (``len(tokens)``: none)."""
    depth = 0
    for index in range(start, len(tokens)):
        if tokens[index].kind == "op" and tokens[index].text == "(":
            depth += 1
        elif tokens[index].kind == "op" and tokens[index].text == ")":
            depth -= 1
            if depth == 0:
                return index
    return len(tokens)


def _rows_end(tokens: list[Token], start: int) -> int | None:
    """Where the rows ``(...), (...)`` starting at ``start`` end; None when none start there."""
    end = None
    index = start
    while index < len(tokens) and tokens[index].kind == "op" and tokens[index].text == "(":
        close = _closing(tokens, index)
        if close == len(tokens):
            return None
        end = index = close + 1
        if index < len(tokens) and tokens[index].text == "," and index + 1 < len(tokens):
            index += 1
        else:
            break
    return end


def _sequence_calls(tokens: list[Token]) -> list[Token]:
    """``NEXT VALUE FOR s`` / ``PREVIOUS VALUE FOR s`` as the ``NEXTVAL(s)`` / ``LASTVAL(s)``
    they are (extract reads the sequence from those)."""
    if not any(t.kind == "word" and t.upper == "VALUE" for t in tokens):
        return tokens
    out: list[Token] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        call = _SEQUENCE_CALLS.get(token.upper) if token.kind == "word" else None
        words = [t.upper for t in tokens[index + 1 : index + 3]]
        if call is not None and words == ["VALUE", "FOR"]:
            name_end = index + 4
            while (
                name_end + 1 < len(tokens)
                and tokens[name_end].text == "."
                and tokens[name_end + 1].kind in ("word", "qid")
            ):
                name_end += 2
            if index + 3 < len(tokens) and tokens[index + 3].kind in ("word", "qid"):
                out += [Token("word", call, call, token.gap), Token("op", "(", "(", False)]
                out += tokens[index + 3 : name_end] + [Token("op", ")", ")", False)]
                index = name_end
                continue
        out.append(token)
        index += 1
    return out


_SEQUENCE_CALLS = {"NEXT": "NEXTVAL", "PREVIOUS": "LASTVAL"}
# The functions whose first argument names a sequence (a table), not a column: NEXTVAL and
# SETVAL move it, LASTVAL reads this session's last value.
SEQUENCE_FUNCTIONS = frozenset({"NEXTVAL", "LASTVAL", "SETVAL"})


def _without_modifiers(tokens: list[Token]) -> list[Token]:
    if not any(t.kind == "word" and t.upper in _WORDS for t in tokens):
        return tokens
    first = _AFTER_FIRST.get(tokens[0].upper, frozenset()) if tokens[0].kind == "word" else ()
    index = 1
    while index < len(tokens) and tokens[index].kind == "word" and tokens[index].upper in first:
        index += 1
    kept: list[Token] = [tokens[0]]
    for token in tokens[index:]:
        if token.kind == "word" and token.upper in _SELECT_HINTS and _in_select_options(kept):
            continue
        kept.append(token)
    return kept


def _in_select_options(before: list[Token]) -> bool:
    """Do ``before``'s last tokens read SELECT followed by options only?"""
    for token in reversed(before):
        if token.kind != "word":
            return False
        if token.upper == "SELECT":
            return True
        if token.upper not in _SELECT_OPTIONS:
            return False
    return False


def _without_escapes(tokens: list[Token]) -> list[Token]:
    if not any(t.kind == "op" and t.text == "{" for t in tokens):
        return tokens
    out: list[Token] = []
    closing: list[bool] = []  # per open brace: is it an {oj ...} whose brace goes too
    index = 0
    while index < len(tokens):
        token = tokens[index]
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if token.text == "{" and token.kind == "op" and following is not None:
            literal = _LITERALS.get(following.upper) if following.kind == "word" else None
            if (
                literal is not None
                and index + 3 < len(tokens)
                and tokens[index + 2].kind == "str"
                and tokens[index + 3].text == "}"
            ):
                out += [Token("word", literal, literal, token.gap), tokens[index + 2]]
                index += 4
                continue
            oj = following.kind == "word" and following.upper == "OJ"
            closing.append(oj)
            if oj:
                index += 2
                continue
        elif token.text == "}" and token.kind == "op" and closing:
            if closing.pop():
                index += 1
                continue
        out.append(token)
        index += 1
    return out


_LITERALS = {"D": "DATE", "T": "TIME", "TS": "TIMESTAMP"}
_SET_OPERATORS = frozenset({"UNION", "EXCEPT", "INTERSECT"})


def text_for_sqlglot(sql: str) -> str:
    """One statement's text as sqlglot is to get it (unchanged when nothing applies)."""
    if _MAY_HOLD(sql) is None:
        return sql
    try:
        tokens = tokenize(sql)
    except LexError:
        return sql  # sqlglot fails on it too: unparsed either way
    rewritten = for_sqlglot(tokens) if tokens else tokens
    return sql if rewritten is tokens else render(rewritten)
