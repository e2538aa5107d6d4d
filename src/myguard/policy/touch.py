"""Which columns and tags a statement touches, computed once per analysis and cached."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from myguard.analysis.model import Statement, TableName
from myguard.policy.globs import ColumnGlob

# (db, table) -> its column names, or None when unknown; provided by the proxy.
SchemaLookup = Callable[[str, str], "list[str] | None"]


@dataclass(frozen=True, slots=True)
class Touch:
    """A statement's column footprint.

    ``columns``: (table, column) pairs known for sure (explicit references, and ``SELECT *``
    expanded through the schema hook). ``loose``: column names the SQL does not tie to a table,
    which may belong to any table in ``tables``. ``whole``: tables (or ``db.*`` databases) whose
    every column counts as touched (``SELECT *`` without schema knowledge, DROP DATABASE).
    """

    statement: Statement
    columns: frozenset[tuple[TableName, str]]
    loose: frozenset[str]
    tables: frozenset[TableName]
    whole: frozenset[TableName]
    tags: frozenset[str]

    def matches(self, glob: ColumnGlob) -> bool:
        if any(glob.matches(table, column) for table, column in self.columns):
            return True
        if any(glob.table.matches(table) for table in self.whole):
            return True
        return any(glob.column.match(name) for name in self.loose) and any(
            glob.table.matches(table) for table in self.tables
        )


def touch(
    statement: Statement,
    tags: Mapping[str, tuple[ColumnGlob, ...]],
    schema: SchemaLookup | None,
) -> Touch:
    """The footprint of ``statement`` and the tags it carries."""
    columns = {(c.table, c.name) for c in statement.columns if c.table is not None}
    loose = frozenset(c.name for c in statement.columns if c.table is None)
    whole = {t for t in statement.tables if t.name == "*"}
    for table in statement.star_tables:
        known = schema(table.db or "", table.name) if schema is not None else None
        if known is None:
            whole.add(table)
        else:
            columns.update((table, name) for name in known)
    result = Touch(
        statement, frozenset(columns), loose, statement.tables, frozenset(whole), frozenset()
    )
    found = frozenset(tag for tag, globs in tags.items() if any(map(result.matches, globs)))
    return replace(result, tags=found)
