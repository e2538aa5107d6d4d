"""Statements sqlglot parses well: queries, DML and table DDL."""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from myguard.analysis.extract import Extract, extract

_QUERY_KINDS: tuple[tuple[type[exp.Expression], str], ...] = (
    (exp.Insert, "insert"),
    (exp.Update, "update"),
    (exp.Delete, "delete"),
    (exp.Query, "select"),
    (exp.Values, "select"),
)


def parse(sql: str) -> exp.Expression | None:
    """One statement's tree, or None when sqlglot fails or only recognises a ``Command``."""
    try:
        trees = sqlglot.parse(sql, read="mysql")
    except (ParseError, TokenError, ValueError):
        return None
    if len(trees) != 1 or trees[0] is None or isinstance(trees[0], exp.Command):
        return None
    return trees[0]


def query_kind(tree: exp.Expression) -> str | None:
    """select / insert / update / delete for a query or DML tree, else None."""
    for node_type, kind in _QUERY_KINDS:
        if isinstance(tree, node_type):
            return kind
    return None


def analyse(sql: str, current_db: str | None) -> tuple[exp.Expression, Extract] | None:
    """Parse and extract, or None when sqlglot cannot parse ``sql``."""
    tree = parse(sql)
    if tree is None:
        return None
    return tree, extract(tree, current_db)
