"""Preparing a parsed query for lineage: views inlined, base-table schemas looked up."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlglot
from sqlglot import exp

SchemaLookup = Callable[[str, str], Sequence[str] | None]
ViewLookup = Callable[[str, str], str | None]

MAX_VIEW_DEPTH = 16


class Unresolvable(Exception):
    """The query cannot be analysed (a view that does not parse, views nested too deep)."""


def cte_names(tree: exp.Expression) -> set[str]:
    return {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}


def _base_tables(tree: exp.Expression) -> list[exp.Table]:
    ctes = cte_names(tree)
    return [
        t for t in tree.find_all(exp.Table) if t.name and not (not t.db and t.name.lower() in ctes)
    ]


def inline_views(
    tree: exp.Expression, db: str | None, views: ViewLookup, depth: int = 0
) -> exp.Expression:
    """Replace each view reference by its definition as a derived table of the same name.

    Unqualified tables inside a view belong to the view's database, so they are
    qualified before the definition is spliced in.
    """
    for table in _base_tables(tree):
        table_db = table.db or db
        if table_db is None:
            continue
        definition = views(table_db, table.name)
        if definition is None:
            continue
        if depth >= MAX_VIEW_DEPTH:
            raise Unresolvable("views nested too deeply")
        try:
            body = sqlglot.parse_one(definition, read="mysql")
        except sqlglot.errors.SqlglotError as exc:
            raise Unresolvable(f"view {table_db}.{table.name} does not parse") from exc
        if not isinstance(body, exp.Query):
            raise Unresolvable(f"view {table_db}.{table.name} is not a query")
        for inner in _base_tables(body):
            if not inner.db:
                inner.set("db", exp.to_identifier(table_db))
        body = inline_views(body, table_db, views, depth + 1)
        alias = table.alias_or_name
        table.replace(exp.Subquery(this=body, alias=exp.TableAlias(this=exp.to_identifier(alias))))
    return tree


def schema_for(tree: exp.Expression, db: str | None, schema: SchemaLookup) -> dict:
    """The sqlglot mapping schema of every base table the query reads that ``schema`` knows."""
    mapping: dict[str, dict[str, dict[str, str]]] = {}
    for table in _base_tables(tree):
        table_db = table.db or db
        if table_db is None:
            continue
        columns = schema(table_db, table.name)
        if columns is not None:
            # column names are case-blind in MySQL: the query's are folded to lower case too
            mapping.setdefault(table_db, {})[table.name] = {c.lower(): "TEXT" for c in columns}
    return mapping


def table_refs(tree: exp.Expression, db: str | None) -> list[tuple[str | None, str]]:
    """(db, table) of every base table in the statement."""
    return [(t.db or db, t.name) for t in _base_tables(tree)]
